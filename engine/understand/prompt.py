"""Understand: prompt text + overrides -> MusicSpec, every field with its source.

Explicit attributes (tempo, key, meter, length, instruments, dynamics words) are parsed
from the text here, in the ways people write them ("♩=100", "F#m", "key of C sharp minor",
"six-eight time", "30 seconds", "no drums or bass"). Fuzzy ones (style, mood) are judged by
meaning: the prompt is compared with each style's and mood's description by a sentence
embedding (engine/understand/embed.py), and words from the catalogues add a strong bonus on top. Fields
nobody named fall back to the style's or the embedded defaults, and say so.
"""
from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

from engine.catalog import instruments, styles
from engine.catalog import words as catalog_words
from engine.config import (
    DEFAULTS,
    METER_DENOMINATORS,
    PROMPT_MAX_CHARS,
    TEMPO_MAX_BPM,
    TEMPO_MIN_BPM,
)
from engine.errors import SpecError
from engine.music.checks import check
from engine.music.spec import MusicSpec, Part, Source
from engine.music.theory import MODES, Key, Meter, check_meter, parse_key, parse_meter
from engine.understand import embed, phrases


@dataclass(frozen=True)
class Overrides:
    """Values given beside the prompt (CLI flags, request fields); each wins over the text."""

    tempo_bpm: float | None = None
    key: str | None = None
    meter: str | None = None
    bars: int | None = None
    seed: int | None = None
    start_bar: int | None = None
    quantize: bool | None = None  # True: every note grid-exact; False: humanised (the default)
    chords: str | None = None  # a progression (engine/chords.py)


# The tonic assumed when only a mode is asked ("in a minor key", "in phrygian"): each mode on its white-key
# tonic, the key without sharps or flats (E phrygian, the flamenco mode on the guitar's open low string).
DEFAULT_TONIC = {"major": "C", "minor": "A", "dorian": "D", "phrygian": "E", "lydian": "F",
                 "mixolydian": "G", "locrian": "B"}
# Tempo words, as quarter-note BPM.
TEMPO_WORDS: dict[str, float] = {
    "grave": 40, "largo": 50, "lento": 56, "very slow": 60, "adagio": 70, "slow": 72, "slowly": 72,
    "leisurely": 80, "andante": 84, "medium tempo": 100, "moderato": 108, "mid-tempo": 100, "midtempo": 100,
    "allegretto": 116, "upbeat": 124, "uptempo": 130, "up-tempo": 130, "brisk": 130, "allegro": 132,
    "fast": 140, "vivace": 150, "very fast": 170, "presto": 176, "prestissimo": 200,
    "quick": 140, "quickly": 140, "quick tempo": 140, "lively": 132, "rapid": 150, "speedy": 150,
    "fast-paced": 150, "fast paced": 150, "hurried": 150, "racing": 160, "frantic": 175, "breakneck": 185,
    "blistering": 185, "blazing": 180, "lightning fast": 185, "furious": 175, "double time": 170,
    "unhurried": 72, "languid": 66, "lazy": 76, "sluggish": 64, "plodding": 60, "crawling": 50,
    "glacial": 44, "snail's pace": 48, "dragging": 60, "mid tempo": 100, "medium pace": 100,
    # forms that carry their tempo whatever the style: a folk ballad or a jazz ballad is slow
    "ballad": 70, "lullaby": 66, "cradle song": 66, "lament": 60, "dirge": 52, "nocturne": 63,
    "funeral march": 56,
}
# A tempo word this fast or faster means at least the top of a named style's range.
FAST_WORD_BPM = 140
# An intensifier before a tempo word ("really fast", "super slow") pushes it to the end of the scale;
# a softener ("fairly fast", "a bit slow") pulls it toward the middle.
TEMPO_INTENSIFIED = {"fast": 170, "quick": 165, "slow": 60}
TEMPO_SOFTENED = {"fast": 126, "quick": 124, "slow": 84}
_TEMPO_INTENSIFIER_RE = re.compile(
    r"\b(?:(really|very|super|so|extremely|incredibly|insanely|crazy|ridiculously|blisteringly|ultra|hyper"
    r"|uber|seriously|blazing|lightning|break-?neck|hella|mega)|(fairly|quite|pretty|rather|a bit|a little|"
    r"slightly|kind of|kinda|somewhat|moderately))[\s-]+(fast|quick|slow)\b")
# Meters a word implies.
METER_WORDS: dict[str, tuple[int, int]] = {
    "waltz": (3, 4), "minuet": (3, 4), "mazurka": (3, 4), "jig": (6, 8), "tarantella": (6, 8),
    "march": (4, 4), "reel": (4, 4), "slip jig": (9, 8), "polka": (2, 4),
}
# Names of time signatures: as explicit as "4/4".
TIME_WORDS: dict[str, tuple[int, int]] = {"common time": (4, 4), "cut time": (2, 2), "alla breve": (2, 2)}
ARC_WORDS: dict[str, str] = {
    "crescendo": "crescendo", "building": "crescendo", "builds": "crescendo", "build up": "crescendo",
    "build-up": "crescendo", "building up": "crescendo", "rising": "crescendo", "swelling": "crescendo",
    "climax": "crescendo", "growing": "crescendo", "starting soft": "crescendo", "starts soft": "crescendo",
    "starting quiet": "crescendo", "starts quiet": "crescendo", "soft to loud": "crescendo",
    "quiet to loud": "crescendo", "gets louder": "crescendo", "getting louder": "crescendo",
    "intensifying": "crescendo", "ramping up": "crescendo",
    "fading out": "decrescendo", "fade out": "decrescendo", "fades out": "decrescendo", "fade-out": "decrescendo",
    "fading away": "decrescendo", "decrescendo": "decrescendo", "diminuendo": "decrescendo",
    "dying away": "decrescendo", "dying down": "decrescendo", "winding down": "decrescendo",
    "loud to soft": "decrescendo", "loud to quiet": "decrescendo", "starting loud": "decrescendo",
    "starts loud": "decrescendo", "gets quieter": "decrescendo", "getting quieter": "decrescendo",
    "getting softer": "decrescendo", "gets softer": "decrescendo",
    "grows": "crescendo", "slowly grows": "crescendo", "grows louder": "crescendo", "swells": "crescendo",
    "builds up": "crescendo", "build": "crescendo", "escalating": "crescendo", "rises": "crescendo",
    "building all the way": "crescendo", "louder and louder": "crescendo", "bigger and bigger": "crescendo",
    "fades": "decrescendo", "fades away": "decrescendo", "fade away": "decrescendo", "fading": "decrescendo",
    "dies away": "decrescendo", "dies down": "decrescendo", "dies out": "decrescendo", "fade-away": "decrescendo",
    "quieter and quieter": "decrescendo", "softer and softer": "decrescendo", "tapering off": "decrescendo",
    "peters out": "decrescendo", "winds down": "decrescendo", "fadeout": "decrescendo",
    "fade in": "crescendo", "fades in": "crescendo", "fading in": "crescendo",
    "settles": "decrescendo", "settles down": "decrescendo", "calms down": "decrescendo",
    "falls back": "decrescendo",
    # a breakdown: the band drops out in the middle and comes back ("a banjo breakdown" is a fast tune)
    "a breakdown": "dip", "the breakdown": "dip", "breakdown in the middle": "dip", "breakdown halfway": "dip",
    "drops out": "dip", "drop out": "dip", "dropout": "dip", "drops away": "dip",
}
# Soft or loud "at first" ("soft and slow at first", "starts gently"): the opposite comes later.
_ARC_AT_FIRST_RE = re.compile(
    r"\b(?:start(?:s|ing)?|begin(?:s|ning)?|open(?:s|ing)?)\s+(?:out\s+)?(?:very\s+|really\s+)?"
    r"(soft(?:ly)?|quiet(?:ly)?|gentl[ey]|calm(?:ly)?|sparse(?:ly)?|small|whisper|loud(?:ly)?|big|huge|full|intense)\b"
    r"|\b(soft|quiet|gentle|calm|sparse|hushed|loud|big|huge|intense|full)\b[^,.;:!]{0,30}?"
    r"\b(?:at first|at the start|to begin with|in the beginning|at the beginning)\b")
_ARC_LOUD_WORDS = ("loud", "loudly", "big", "huge", "full", "intense")
SWING_WORDS = ("swing", "swung", "shuffle", "triplet feel", "swing feel", "swingin", "swinging")
QUANTIZE_WORDS = ("quantized", "quantised", "quantize", "quantise", "grid-exact", "on the grid", "to the grid")
NO_SWING_WORDS = ("straight", "no swing", "straight eighths", "unswung", "without swing")
NUMBER_WORDS = {
    "one": 1, "a": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "twenty": 20, "twenty-four": 24, "thirty": 30, "thirty-two": 32, "forty": 40,
    "forty-five": 45, "fifty": 50, "sixty": 60, "sixty-four": 64, "ninety": 90,
}
# Note values a metronome mark can be given in, as quarter notes ("♩.=60" in 6/8 is 90 quarters a minute).
_BEAT_UNITS = {"♩.": 1.5, "q.": 1.5, "♩": 1.0, "q": 1.0, "quarter": 1.0, "quarter note": 1.0,
               "𝅗𝅥": 2.0, "half note": 2.0, "♪": 0.5, "eighth note": 0.5}

_NUM = r"(\d+(?:\.\d+)?|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"
_TEMPO_RANGE_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:-|–|to|and)\s*(\d+(?:\.\d+)?)\s*(?:bpm|beats (?:per|a) minute)\b")
_TEMPO_RES = (
    re.compile(r"(?<![\w.])" + _NUM + r"\s*-?\s*(?:bpm|beats (?:per|a) minute)\b"),
    re.compile(r"\bbpm\s*(?:of\s*|=\s*|:\s*)?(\d+(?:\.\d+)?)\b"),
    re.compile(r"\btempo\s*(?:of\s*|=\s*|:\s*|at\s*|is\s*)?(\d+(?:\.\d+)?)\b"),
)
# "house at 124": a bare number after "at" is a tempo, unless a unit follows it.
_AT_NUMBER_RE = re.compile(
    r"\bat\s+(\d{2,3}(?:\.\d+)?)(?![\d.]|\s*(?:%|-|/|bars?\b|measures?\b|seconds?\b|secs?\b|s\b|minutes?\b"
    r"|mins?\b|hz\b|khz\b|db\b|ms\b|percent\b|o'clock\b|am\b|pm\b))"
)
_METRONOME_RE = re.compile(
    r"(" + "|".join(re.escape(u) for u in sorted(_BEAT_UNITS, key=len, reverse=True)) + r")\s*=\s*(\d+(?:\.\d+)?)"
)
_BARS_RE = re.compile(r"(?<![\w.])" + _NUM + r"[\s-]*(?:bars?|measures?)\b")
_DECADE_RE = re.compile(r"^(?:1[89]|20)?[1-9]0$")
_SECONDS_RE = re.compile(r"(?<![\w.])" + _NUM + r"(?:[\s-]*(?:seconds?|secs?)\b|(\s*)s\b)")
_MINUTES_RE = re.compile(r"(?<![\w.])(half a|" + _NUM[1:-1] + r")[\s-]*(?:minutes?|mins?)\b")
_METER_RE = re.compile(r"(?<![\d/])(\d{1,3})\s*/\s*(\d{1,3})(?![\d/])(\s*(?:time|meter|signature))?")
_METER_WORDS_RE = re.compile(
    r"\b(two|three|four|five|six|seven|nine|eleven|twelve)(?:[\s-](two|four|eight|sixteen)\s+time\b"
    r"|-(two|four|eight|sixteen)\b(?!\s*(?:bars?|measures?|beats?|notes?)\b))"
)
_ACCIDENTAL = r"(?:#|♯|b|♭|[\s-]*sharp|[\s-]*flat)"
_MODE_NAMES = "|".join(sorted(set(MODES) | {"maj", "min", "ionian", "aeolian"}, key=len, reverse=True))
_DROP_TUNING_RE = re.compile(r"\bdrop[\s-]([a-g]" + _ACCIDENTAL + r"?)(?![a-z])")  # "drop D", "drop c#"
# "a minor key" means some minor key, not A minor: an article before these words is no tonic.
_NOT_A_TONIC_AFTER = (r"[\s-]+(?:key|tonality|feel|vibe|mood|tone|sound|chord|progression|seventh|sixth|third"
                      r"|twist|change)")
_KEY_WITH_MODE_RE = re.compile(r"(?<![\w#♯♭])([a-g]" + _ACCIDENTAL + r"?)[\s-]*(" + _MODE_NAMES + r")\b")
_KEY_SHORT_RE = re.compile(r"(?<![\w#♯♭])([A-G](?:#|♯|b|♭)?)m(?![\w#♯♭])")
_KEY_AFTER_IN_RE = re.compile(
    r"\b(?:in(?: the key of)?|key(?: of)?:?)\s+([A-G](?:#|♯|b|♭|[\s-]sharp\b|[\s-]flat\b)?)(?![\w#♯♭])"
)
_KEY_IN_LOWER_RE = re.compile(r"\b(?:in(?: the key of)?|key(?: of)?:?)\s+[a-g](?:#|♯|b|♭)?m?(?=[\s,.;:!]|$)")
_KEY_BARE_RE = re.compile(r"(?<![\w#♯♭])([A-G](?:#|♯|b|♭))(?![\w#♯♭])")
_CHURCH_MODES = "dorian|phrygian|lydian|mixolydian|locrian"
_MODE_ONLY_RE = re.compile(
    r"\b(?:in\s+)?(?:an?\s+)?(minor|major)[\s-]+(?:key|tonality|mode)\b|\bin\s+(minor|major)\b"
    r"|\b(" + _CHURCH_MODES + r")\b"  # these words name nothing but a mode: any of them, alone, is one
)
# Words that may follow a bare "in A" without making "A" an article ("in A with strings").
_AFTER_BARE_TONIC = r"(?:with|and|at|for|on|in|over|please|time|key)\b"
# A negated list: "no drums", "without drums or bass", "no drums, bass or piano", "no drums and no bass".
# A comma continues the list only when an "or"/"nor" closes it ("no drums, rhodes and bass" negates drums).
_ITEM = r"(?:any\s+)?[a-z0-9][a-z0-9\- ]*?"
_NEGATION_RE = re.compile(
    r"\b(?:no|without|minus|sans)\s+("
    + _ITEM + r"(?:\s*,\s*" + _ITEM + r")*\s*,?\s+n?or\s+" + _ITEM
    + r"|" + _ITEM + r"(?:\s+and\s+(?:no|without)\s+" + _ITEM + r")*"
    + r")(?=[,.;:!()]|$| and | or | in | at | with | but | please )"
)
_SOLO_RE = re.compile(r"\b(solo|unaccompanied|alone|only|just)\b")
# "a trombone solo over a slow blues": the instrument is featured, the band stays
_SOLO_OVER_RE = re.compile(r"\bsolos?(?:ing)?\s+(?:over|on top of|above|with|backed by|against|in front of)\b"
                           # "bossa nova with a flute solo", "featuring a sax solo": a solo inside a band
                           r"|\b(?:with|featuring|and)\s+(?:an?\s+)?(?:[\w-]+\s+){1,3}solos?\b")
# Words that ask for no more parts than those named (a style's other instruments do not join):
# an ensemble size, or a sparse texture.
# ("minimal" is not among them: "minimal techno" is a genre.)
_NO_ADDITIONS_RE = re.compile(r"\b(duo|duet|trio|quartet|quintet|sparse|sparsely|stripped[\s-]down|stripped back"
                              r"|bare|barebones|nothing else|a cappella|acapella)\b")
# An ensemble's size: the parts named, and the style's drums and bass only while there is room.
ENSEMBLE_SIZES = {"duo": 2, "duet": 2, "trio": 3, "quartet": 4, "quintet": 5}
_ENSEMBLE_RE = re.compile(r"\b(" + "|".join(ENSEMBLE_SIZES) + r")\b")
# Moods in which a style only near by meaning does not bring its drums and bass to the parts named.
QUIET_MOODS = ("calm", "sad", "tense")
QUIET_ENERGY = 0.25
_SPARSE_RE = re.compile(r"\b(sparse|sparsely|stripped[\s-]down|stripped back|bare|barebones)\b")
# A bare number alone in its clause ("drum and bass, 172, liquid"): a tempo when it is in this range.
_BARE_TEMPO_RE = re.compile(r"(?:^|[,;:(])\s*(\d{2,3})\s*(?=[,;:)]|$)")
BARE_TEMPO_RANGE = (50, 220)
# Most parts a prompt makes; further instruments named are left out, and the spec says so.
MAX_PARTS = 8

# Choosing style and mood by meaning: a catalogue entry's score is the cosine similarity of the
# prompt with its description, plus a bonus when the prompt says one of its keywords (longer
# keywords a little more: "funky disco" names disco more precisely than "funky" names funk).
STYLE_KEYWORD_BONUS = 0.25
KEYWORD_LENGTH_BONUS = 0.02      # per character of the longest keyword found
# With no keyword, the nearest style is taken if it is at least this similar and more similar
# than a plain "a piece of music" is (so "piano piece" stays the default style, "tango" goes latin).
STYLE_MIN_SIMILARITY = 0.35
GENERIC_MUSIC = "a piece of music"
GENERIC_MARGIN = 0.02
# ... and if it is nearer than the next style by this much: a near tie ("Rhodes and french horns":
# reggae 0.41, bossa nova 0.41) says the prompt names no style, so the default is kept.
STYLE_MIN_LEAD = 0.03
MOOD_WORD_BONUS = 0.3
NEUTRAL_MOOD_MARGIN = 0.05       # a mood no word names must beat "neutral" by this much
MOOD_MIN_SIMILARITY = 0.35       # ... and be at least this similar to the prompt
# Energy: the lean (high minus low similarity) of a typical prompt is about -0.03; leaning
# +-0.17 either way (a lullaby, a rave) spans the 0-1 scale. Within +-0.02 it says nothing.
ENERGY_CENTRE = -0.03
ENERGY_SCALE = 3.0
ENERGY_MIN_LEAN = 0.02
DEFAULTS_ENERGY = 0.5


def _word_number(token: str) -> float:
    return float(NUMBER_WORDS[token] if token in NUMBER_WORDS else token)


@lru_cache(maxsize=4096)
def _word_pattern(word: str, plural: bool) -> re.Pattern:
    """A phrase as a pattern: a space or hyphen between its words matches either ("high-energy",
    "bass-and-lead"); ``plural`` also takes the word with -s or -es ("overdriven guitars")."""
    body = r"[\s-]+".join(re.escape(part) for part in re.split(r"[\s-]+", word))
    return re.compile(r"(?<![\w-])" + body + (r"(?:e?s)?" if plural else "") + r"(?![\w-])")


def _find_words(text: str, words: list[str], plural: bool = False) -> list[tuple[int, int, str]]:
    """Non-overlapping occurrences of ``words`` in ``text``, longest first, as (start, end, word)."""
    taken: list[tuple[int, int, str]] = []
    for word in sorted(words, key=len, reverse=True):
        for match in _word_pattern(word, plural).finditer(text):
            if all(match.end() <= s or match.start() >= e for s, e, _ in taken):
                taken.append((match.start(), match.end(), word))
    return sorted(taken)


@lru_cache(maxsize=1)
def _mood_data() -> dict:
    return tomllib.loads(resources.files("engine.catalog.data").joinpath("moods.toml").read_text())


def _moods() -> list[dict]:
    return _mood_data()["mood"]


def check_prompt(prompt: str) -> str:
    """The prompt, stripped; SpecError if empty or over the limit."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise SpecError("prompt", f"is empty; describe the music in 1-{PROMPT_MAX_CHARS} characters")
    if len(prompt) > PROMPT_MAX_CHARS:
        raise SpecError("prompt", f"is {len(prompt)} characters; at most {PROMPT_MAX_CHARS} are accepted")
    return prompt.strip()


def check_tempo(bpm: float, field: str = "tempo_bpm") -> float:
    return float(check("tempo_bpm", bpm, field))


def check_bars(bars: int, field: str = "bars") -> int:
    return int(check("bars", bars, field))


def check_start_bar(bar: int, field: str = "start_bar") -> int:
    return int(check("start_bar", bar, field))


def check_seed(seed: int, field: str = "seed") -> int:
    return int(check("seed", seed, field))


_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
          "seventeen": 17, "eighteen": 18, "nineteen": 19}
_SPELLED_RE = re.compile(
    r"\b(?:(one|a|two)\s+hundred\b(?:\s+and)?\s*)?(?:\b(" + "|".join(_TENS) + r")(?:[\s-](" + "|".join(_UNITS)
    + r"))?\b|\b(" + "|".join(_TEENS) + r")\b|\b(" + "|".join(_UNITS) + r")\b)?")


def spelled_numbers(text: str) -> str:
    """``text`` with spelled-out numbers from twenty up to two hundred and ninety-nine as digits
    ("one hundred and thirty" -> "130", "ninety-six" -> "96"); other words are left as they are."""
    def digits(match: re.Match) -> str:
        hundreds, tens, unit, teen, alone = match.groups()
        if not hundreds and not tens:
            return match.group(0)
        value = (100 * (2 if hundreds == "two" else 1) if hundreds else 0) + _TENS.get(tens or "", 0) \
            + _UNITS.get(unit or alone or "", 0) + _TEENS.get(teen or "", 0)
        return str(value) + (" " if match.group(0).endswith(" ") else "")
    return _SPELLED_RE.sub(digits, text)


def _parse_tempo(text: str) -> tuple[float | None, Source | None]:
    """Tempo in quarter-note BPM: a number with bpm/tempo, a metronome mark, a range, or a word."""
    text = spelled_numbers(text)
    match = _TEMPO_RANGE_RE.search(text)
    if match:
        low, high = sorted((float(match.group(1)), float(match.group(2))))
        return check_tempo(round((low + high) / 2, 1)), Source.EXPLICIT
    match = _METRONOME_RE.search(text)
    if match:
        return check_tempo(round(float(match.group(2)) * _BEAT_UNITS[match.group(1)], 2)), Source.EXPLICIT
    for pattern in _TEMPO_RES:
        match = pattern.search(text)
        if match and match.group(1) != "a":
            return check_tempo(_word_number(match.group(1))), Source.EXPLICIT
    match = _AT_NUMBER_RE.search(text)
    if match and TEMPO_MIN_BPM <= float(match.group(1)) <= TEMPO_MAX_BPM:
        return float(match.group(1)), Source.EXPLICIT
    for match in _BARE_TEMPO_RE.finditer(text):
        if BARE_TEMPO_RANGE[0] <= int(match.group(1)) <= BARE_TEMPO_RANGE[1]:
            return float(match.group(1)), Source.EXPLICIT
    match = _TEMPO_INTENSIFIER_RE.search(text)
    if match:
        table = TEMPO_INTENSIFIED if match.group(1) else TEMPO_SOFTENED
        return float(table[match.group(3)]), Source.INFERRED
    found = _find_words(text, list(TEMPO_WORDS))
    if found:
        return TEMPO_WORDS[found[0][2]], Source.INFERRED
    return None, None


# Numbers that name a thing, not a quantity: drum machines and synths ("808s", "TR-909", "303"),
# "12-string guitar", decades ("80s", "1970s", "'90s"). They are blanked before tempo and length are read.
_DECADE_WORD_RE = re.compile(r"(?<![\w.])'?(?:1[89]|20)?[1-9]0'?s\b")


def number_text(text: str) -> str:
    """The lower-cased prompt with numbers that name things blanked out (same length, same offsets)."""
    spans = [(start, end) for start, end, word in _find_words(text, instruments.all_words(), plural=True)
             if any(c.isdigit() for c in word)]
    spans += [m.span() for m in _DECADE_WORD_RE.finditer(text)]
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _parse_key(text: str, original: str) -> tuple[Key | None, Source | None]:
    """The key the prompt names, or just a mode ("in a minor key"), and how sure that is.

    ``text`` is the lower-cased prompt, ``original`` the prompt as typed: case tells "Am" (A minor)
    from "am", and "in A" from "in a". The first way of writing a key that matches wins.
    """
    for match in _KEY_WITH_MODE_RE.finditer(text):
        tonic = original[match.start(1):match.end(1)]
        # "a minor key", "A minor-key elegy", "a major chord": the article, not the note A
        # (an upper-case A counts as the article only where a sentence starts).
        article = tonic == "a" or (tonic == "A" and re.search(r"(^|[.!?]\s+)$", original[:match.start(1)]))
        if article and re.match(_NOT_A_TONIC_AFTER, text[match.end():]):
            continue
        if tonic == "a" and match.group(2) in ("maj", "min"):
            continue
        if tonic == "a" and re.fullmatch(_CHURCH_MODES, match.group(2)):
            continue  # "a dorian groove": the article and a mode (the tonic typed as a capital: "A dorian")
        return parse_key(f"{match.group(1)} {match.group(2)}"), Source.EXPLICIT
    for pattern in (_KEY_SHORT_RE, _KEY_AFTER_IN_RE, _KEY_BARE_RE):
        for match in pattern.finditer(original):
            if pattern is _KEY_SHORT_RE:
                return parse_key(f"{match.group(1)} minor"), Source.EXPLICIT
            rest = original[match.end():]
            if match.group(1) == "A" and re.match(r"\s+[a-z]", rest) and not re.match(r"\s+" + _AFTER_BARE_TONIC, rest):
                continue  # "in A cheerful mood": the article
            return parse_key(match.group(1)), Source.EXPLICIT
    match = _MODE_ONLY_RE.search(text)
    if match:
        mode = next(group for group in match.groups() if group)
        return Key(DEFAULT_TONIC[mode], mode), Source.INFERRED
    return None, None


def _parse_meter(text: str) -> tuple[Meter | None, Source | None]:
    """A time signature ("7/8", "six-eight time") or one a word implies ("waltz")."""
    for match in _METER_RE.finditer(text):
        numerator, denominator = int(match.group(1)), int(match.group(2))
        if denominator not in METER_DENOMINATORS and not match.group(3):
            continue  # "24/7", "1/3": a fraction, not a meter, unless it says "time" or "meter"
        return check_meter(numerator, denominator), Source.EXPLICIT
    match = _METER_WORDS_RE.search(text)
    if match:
        denominator = match.group(2) or match.group(3)
        return check_meter(int(_word_number(match.group(1))), int(_word_number(denominator))), Source.EXPLICIT
    found = _find_words(text, list(TIME_WORDS))
    if found:
        return Meter(*TIME_WORDS[found[0][2]]), Source.EXPLICIT
    found = _find_words(text, list(METER_WORDS))
    if found:
        return Meter(*METER_WORDS[found[0][2]]), Source.INFERRED
    return None, None


def _parse_length(text: str) -> tuple[int | None, float | None]:
    """Bars, or seconds when the length is given in time ("30 seconds", "2 minutes", "45s")."""
    match = _BARS_RE.search(text)
    if match:
        return check_bars(int(_word_number(match.group(1)))), None
    for match in _SECONDS_RE.finditer(text):
        if match.group(2) is not None and (_DECADE_RE.match(match.group(1)) or not match.group(1)[0].isdigit()):
            continue  # "80s synth pop", "1970s": a decade, not a length; "as": a word, not "a s"
        return None, _word_number(match.group(1))
    match = _MINUTES_RE.search(text)
    if match:
        return None, 30.0 if match.group(1) == "half a" else 60.0 * _word_number(match.group(1))
    return None, None


# A hedge on a word ("slow-ish", "goblin-ish", "fastish") does not change what it names; it is blanked
# (same length, so offsets still match the prompt as typed).
_HEDGE_RE = re.compile(r"(?<=\w)(-ish)\b|\b(?:slow|fast|quick|loud|soft|dark|warm|long|short)(ish)\b")


def hedges_blanked(text: str) -> str:
    """``text`` with "-ish" hedges replaced by spaces."""
    def blank(match: re.Match) -> str:
        hedge = match.group(1) or match.group(2)
        return match.group(0)[:len(match.group(0)) - len(hedge)] + " " * len(hedge)
    return _HEDGE_RE.sub(blank, text)


def _negated_spans(text: str) -> list[tuple[int, int]]:
    return [m.span(1) for m in _NEGATION_RE.finditer(text)]


def _excluded(text: str) -> tuple[set[instruments.Instrument], set[str]]:
    """Instruments the prompt excludes ("no piano"), and whole roles ("no drums", "no bass")."""
    excluded_instruments: set[instruments.Instrument] = set()
    excluded_roles: set[str] = set()
    for start, end in _negated_spans(text):
        for _, _, word in _find_words(text[start:end], instruments.all_words(), plural=True):
            for instrument in instruments.lookup_all(word):
                excluded_instruments.add(instrument)
                if instrument.role in ("drums", "bass"):
                    excluded_roles.add(instrument.role)
    if re.search(r"\b(drumless|beatless|a cappella|acapella)\b", text):
        excluded_roles.add("drums")
    return excluded_instruments, excluded_roles


def fuzzy_text(text: str) -> str:
    """The lower-cased prompt less its explicit numbers and names (tempo, key, meter, length).

    What is left is what the embedding should judge: "strings and piano in D minor, 120 bpm"
    is compared as "strings and piano", so "120 bpm" does not pull it towards a fast style.
    """
    for pattern in (_TEMPO_RANGE_RE, *_TEMPO_RES, _METRONOME_RE, _BARS_RE, _SECONDS_RE, _MINUTES_RE, _METER_RE,
                    _METER_WORDS_RE, _KEY_WITH_MODE_RE, _MODE_ONLY_RE, _KEY_IN_LOWER_RE):
        text = pattern.sub(" ", text)
    text = re.sub(r"\b(?:in|at|of)\b(?=\s*(?:[,.;:!]|$))", " ", text)  # "strings in [D minor]"
    text = re.sub(r"\s+([,.;:!])", r"\1", re.sub(r"\s+", " ", text))
    text = re.sub(r"(^|[,.;:!]\s*)[,.;:!]+", r"\1", text).strip(" ,.;:!")
    return text or "music"


def _style(text: str, prompt: str) -> tuple[styles.Style, Source, tuple[int, int], str | None]:
    """The style the prompt means, its source, the span of the keyword that named it, and a note.

    ``text`` is the lower-cased prompt (for keywords), ``prompt`` what the embedding judges
    (`fuzzy_text`). Every style's description is compared with it by sentence embedding; a keyword
    the prompt says adds a bonus. With no keyword, the nearest style is taken when it is close
    enough, and the note says so; otherwise the default style.
    """
    catalogue = list(styles.catalogue().values())
    similarity = embed.rank(prompt, tuple(s.description for s in catalogue) + (GENERIC_MUSIC,))
    generic, similarity = float(similarity[-1]), similarity[:-1]
    # Keywords are matched over all styles at once, longest first, so a word inside a longer
    # keyword ("funky" in "funky disco") does not also count for another style.
    owner = {word: style.name for style in reversed(catalogue) for word in style.keywords}
    hits: dict[str, tuple[int, int, str]] = {}
    negated = _negated_spans(text) + [m.span() for m in re.finditer(r"\b(?:no|without)\s+(?:any\s+)?\w+", text)]
    for hit in _find_words(text, list(owner)):
        if any(s <= hit[0] and hit[1] <= e for s, e in negated):
            continue  # "no swing": swing is refused, not asked for
        name = owner[hit[2]]
        if name not in hits or hit[1] - hit[0] > hits[name][1] - hits[name][0]:
            hits[name] = hit
    scores = [float(sim) + (STYLE_KEYWORD_BONUS + KEYWORD_LENGTH_BONUS * len(hits[s.name][2])
                            if s.name in hits else 0.0)
              for s, sim in zip(catalogue, similarity, strict=True)]
    best = max(range(len(catalogue)), key=scores.__getitem__)
    style = catalogue[best]
    if style.name in hits:
        start, end, _ = hits[style.name]
        return style, Source.INFERRED, (start, end), None
    runner_up = max((i for i in range(len(catalogue)) if i != best), key=scores.__getitem__)
    if (similarity[best] >= max(STYLE_MIN_SIMILARITY, generic - GENERIC_MARGIN)
            and similarity[best] - similarity[runner_up] >= STYLE_MIN_LEAD):
        return style, Source.INFERRED, (0, 0), (
            f"no style I know is named; nearest by meaning: {style.name} (similarity {similarity[best]:.2f}; "
            f"next {catalogue[runner_up].name} {similarity[runner_up]:.2f})")
    return styles.get(DEFAULTS.style), Source.DEFAULT, (0, 0), (
        f"no style I know is named, and none is near enough by meaning (nearest {style.name}, similarity "
        f"{similarity[best]:.2f}): the default style, {DEFAULTS.style}")


def _mood(text: str, prompt: str) -> tuple[dict, Source]:
    """The mood nearest the prompt by meaning (its words are a strong extra signal), or neutral."""
    moods = _moods()
    similarity = embed.rank(prompt, tuple(m["description"] for m in moods))
    scores = []
    for mood, sim in zip(moods, similarity, strict=True):
        score = float(sim)
        if mood["name"] == DEFAULTS.mood:
            score += NEUTRAL_MOOD_MARGIN
        elif _find_words(text, mood["words"]):
            score += MOOD_WORD_BONUS
        elif score < MOOD_MIN_SIMILARITY:
            score = float("-inf")  # too far from every mood word and description to count
        scores.append(score)
    best = moods[max(range(len(moods)), key=scores.__getitem__)]
    return best, Source.DEFAULT if best["name"] == DEFAULTS.mood else Source.INFERRED


def _slot(instrument: instruments.Instrument) -> str:
    """What a part does in the band, for deciding whether a named instrument stands in for a style's own:
    a drum kit, a percussion part beside it, or its role (a keyboard's "keys" comps like "chords")."""
    if instrument.is_percussion:
        return "percussion:" + instrument.part
    return {"keys": "chords"}.get(instrument.role, instrument.role)


def _sound(instrument: instruments.Instrument) -> tuple:
    """What a listener hears of an instrument: two words with the same sound name one part."""
    return instrument.program, instrument.is_drum, instrument.role, instrument.keys


# Words that name an instrument family rather than one sound: where the style plays a sound of that
# General MIDI family, the style's sound is meant ("metal with 7-string guitars": its distortion guitar).
FAMILY_WORDS = ("guitar", "guitars", "bass", "bassline", "bass line", "sax", "saxophone", "horn", "horns", "brass",
                "organ", "keys")
GM_FAMILY_SIZE = 8


def _as_named(instrument: instruments.Instrument, word: str, style: styles.Style | None) -> instruments.Instrument:
    """The instrument a word names in this prompt: the style's own sound for a family word, and a
    stand-in (no General MIDI program of its own) as a part named after the word said ("kora", "djembe")."""
    if word in FAMILY_WORDS and style is not None and not instrument.is_drum:
        for own_word in style.default_parts:
            own = instruments.lookup(own_word)
            if (not own.is_drum and not own.is_percussion and own.role == instrument.role
                    and own.program // GM_FAMILY_SIZE == instrument.program // GM_FAMILY_SIZE):
                return own
    if instrument.stand_in:
        said = word[:-1] if word.endswith("s") and word[:-1] in instrument.words else word
        return replace(instrument, part=re.sub(r"[^a-z0-9]+", "_", said).strip("_") or instrument.part)
    return instrument


# Slang for a feel, not the vibraphone: "beach vibes", "chill vibes" (but "with vibes", "piano, vibes and bass").
_FEEL_VIBES_RE = re.compile(r"\b(?!(?:and|or|with|on|plus|a|the|some|of|by|for|featuring)\b)[a-z'-]+\s+(vibes)\b")
# Words that ask for a rhythm section whatever the style: with no style named, the instruments named are
# the whole ensemble unless the prompt asks for a groove ("a groove with cowbell", "a beat", "full band").
_BAND_RE = re.compile(r"\b(?:grooves?|groovy|beats?|band|backing(?:\s+track)?|rhythm section|jam)\b")
# Words that name a part's job, not its sound: beside an instrument ("harmonica lead", "a sax lead") such a
# word says that instrument plays the tune; on its own ("trance with a lead") it names its instrument.
JOB_WORDS = ("lead",)
_BESIDE_RE = re.compile(r"[\s-]*")
_SOLO_AFTER_RE = re.compile(r"[\s-]*solos?\b")  # "a flute solo": the flute leads too


def _named_instruments(text: str, style_span: tuple[int, int], style: styles.Style | None = None
                       ) -> tuple[list[instruments.Instrument], list[instruments.Instrument]]:
    """The instruments the prompt names, in order, less those it excludes or that are a style's name;
    and those of them a job word beside them makes the lead (JOB_WORDS, or "solo" after them).

    A family word ("guitars") in a style that plays that family means the style's sound; an instrument
    General MIDI lacks plays on a stand-in in a part named after the word said (``_as_named``)."""
    # Words inside a negation ("no drums") or inside a style's name ("drum and bass")
    # do not name a part; a style keyword that is itself an instrument word ("walking bass") does.
    skip = _negated_spans(text) + [m.span() for p in (_TEMPO_RANGE_RE, *_TEMPO_RES) for m in p.finditer(text)]
    if text[style_span[0]:style_span[1]] not in instruments.all_words():
        skip.append(style_span)
    skip += [m.span(1) for m in _FEEL_VIBES_RE.finditer(text)]
    hits = [hit for hit in _find_words(text, instruments.all_words(), plural=True)
            if not any(s <= hit[0] and hit[1] <= e for s, e in skip)]
    led: set[int] = set()  # indexes into hits of the instruments a job word qualifies
    jobs: set[int] = set()  # ... and of those job words
    for index, (start, end, word) in enumerate(hits):
        if word not in JOB_WORDS:
            continue
        for other in (index - 1, index + 1):
            if 0 <= other < len(hits) and hits[other][2] not in JOB_WORDS:
                gap = text[hits[other][1]:start] if other < index else text[end:hits[other][0]]
                if _BESIDE_RE.fullmatch(gap):
                    led.add(other)
                    jobs.add(index)
                    break
    led.update(index for index, (_, end, _) in enumerate(hits) if _SOLO_AFTER_RE.match(text, end))
    named: list[instruments.Instrument] = []
    leads: list[instruments.Instrument] = []
    for index, (_, _, word) in enumerate(hits):
        if index in jobs:
            continue
        found = instruments.lookup_all(word)
        if len(found) == 1:
            found = (_as_named(found[0], word, style),)
        # An ensemble may double an instrument; two words for one sound ("a choir of four voices") name one part.
        if len(found) > 1 or all(_sound(i) != _sound(found[0]) for i in named):
            named.extend(found)
            if index in led and not found[0].is_drum and not found[0].is_percussion:
                leads.append(found[0])
    return named, leads


def _parts(text: str, style: styles.Style, style_span: tuple[int, int], notes: list[str],
           quiet: bool = False, band: bool = True) -> tuple[list[Part], Source]:
    """The parts: the instruments named, joined by the style's own (unless the prompt says only, solo,
    a trio, sparse...), a drum kit and bass where the style always has them, and a melody in a song style.

    A named instrument stands in for the style's instrument of the same kind (a named bass replaces
    the style's bass); the others stay ("80s synth pop with a driving bassline" keeps its synths).
    ``notes`` gets a line for every instrument named but played by another sound, or left out.
    ``quiet`` (a calm, sad or tense prompt, or a low energy): a style that is only near by meaning
    does not add its drums and bass to the instruments named. Without ``band`` (no style named or near:
    the default style, and no groove or band asked: _BAND_RE) the instruments named are the ensemble ("piano
    and strings that grow" has no kit).
    """
    excluded_instruments, excluded_roles = _excluded(text)
    named, leads = _named_instruments(text, style_span, style)
    source = Source.EXPLICIT
    # The style's own instruments join only when the prompt names the genre, not when an instrument word
    # chose it ("a choir" is gospel's keyword, but a hymn for choir wants no gospel band).
    genre_named = style_span != (0, 0) and text[style_span[0]:style_span[1]] not in instruments.all_words()
    solo = bool(named) and _SOLO_RE.search(text) is not None and _SOLO_OVER_RE.search(text) is None
    # The soloist (the first instrument named when the prompt says "solo") plays the tune, whatever its
    # catalogue role: a trombone or double bass solo is a melody, not a bass line.
    soloist = named[0] if named and re.search(r"\bsolo", text) and named[0].role == "bass" else None
    # ... and so does an instrument named as the lead ("a piano lead"), the first one if several are.
    tune = soloist or (leads[0] if leads else None)

    def role_of(instrument: instruments.Instrument) -> str:
        return "melody" if instrument is tune else instrument.role
    sparse = _SPARSE_RE.search(text) is not None
    if not named:
        named = [instruments.lookup(word) for word in style.default_parts]
        source = Source.INFERRED
    elif not solo and genre_named and not _NO_ADDITIONS_RE.search(text):
        covered = {"melody" if i is tune else _slot(i) for i in named}
        for word in style.default_parts:
            instrument = instruments.lookup(word)
            if _slot(instrument) not in covered and instrument not in named:
                named.append(instrument)
                covered.add(_slot(instrument))
    ensemble = _ENSEMBLE_RE.search(text)
    room = ENSEMBLE_SIZES[ensemble.group(1)] if ensemble else MAX_PARTS
    if source is Source.INFERRED:
        named = named[:room]  # "a jazz trio": the style's first three parts (piano, bass, drums)
    by_meaning_only = source is Source.EXPLICIT and style_span == (0, 0)
    if not solo and band and not (by_meaning_only and quiet):
        present = {role_of(i) for i in named if not i.is_percussion}
        for role in style.core_roles:
            if role not in present and not (role == "drums" and sparse) and len(named) < room:
                named.append(_instrument_for_role(style, role))
    chosen = [i for i in named if i.role not in excluded_roles and i not in excluded_instruments]
    if len(chosen) > MAX_PARTS:
        notes.append(f"at most {MAX_PARTS} parts are played; left out: "
                     + ", ".join(i.part for i in chosen[MAX_PARTS:]))
        chosen = chosen[:MAX_PARTS]
    pitched = [i for i in chosen if not i.is_drum and not i.is_percussion]
    # With company, an instrument plays the role its style gives it (ragtime's piano: the melody
    # over its own left hand); alone, it plays everything its catalogue role does.
    roles = {i.part: "melody" if i is soloist or (i is tune and len(pitched) > 1)
             else style.role_of(i.part, i.role) if len(pitched) > 1 else i.role for i in chosen}
    melody = next((instruments.lookup(w) for w in style.default_parts if instruments.lookup(w).role == "melody"), None)
    if (style.song and melody is not None and genre_named and not solo and not _NO_ADDITIONS_RE.search(text)
            and len(pitched) > 1
            and not any(roles[i.part] == "melody" for i in pitched)):
        # A song style with no tune in the parts named: the style's melody instrument joins.
        if melody not in excluded_instruments and len(chosen) < MAX_PARTS:
            chosen.append(melody)
            pitched.append(melody)
            roles[melody.part] = "melody"
            notes.append(f"{style.name} wants a tune and no part named plays one: {melody.part} plays the melody")
    has_melody = any(roles[i.part] == "melody" for i in pitched)
    for instrument in chosen:
        if instrument.stand_in:
            notes.append(f"{instrument.part}: {instrument.stand_in}")
    parts: list[Part] = []
    used: set[str] = set()
    for instrument in chosen:
        role = roles[instrument.part]
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
        if instrument.role == role and not instrument.is_percussion:
            return instrument
    return instruments.for_role(role)


def _arc(text: str, notes: list[str]) -> tuple[str, Source]:
    """The dynamics arc: words ("crescendo", "fades out", "breakdown"; up then down is a "swell", down
    then up a "dip"), soft or loud "at first", else a clause that means one by sentence embedding
    (engine/phrases.py)."""
    negated = _negated_spans(text)
    words = _find_words(text, list(ARC_WORDS))
    found = [ARC_WORDS[w] for s, e, w in words if not any(ns <= s and e <= ne for ns, ne in negated)]
    if words and not found:
        return DEFAULTS.arc, Source.EXPLICIT  # "no fade out": said, and refused
    if found:
        if found[0] == "crescendo" and "decrescendo" in found[1:]:
            return "swell", Source.EXPLICIT
        if found[0] == "decrescendo" and "crescendo" in found[1:]:
            return "dip", Source.EXPLICIT  # "fades out, then builds back up"
        return found[0], Source.EXPLICIT
    match = _ARC_AT_FIRST_RE.search(text)
    if match:
        word = match.group(1) or match.group(2)
        return ("decrescendo" if word in _ARC_LOUD_WORDS else "crescendo"), Source.INFERRED
    meant = phrases.by_meaning("arc", text)
    if meant is not None and meant.value != "steady":
        notes.append(f"dynamics: \"{meant.clause}\" read by meaning as {meant.value} "
                     f"(similarity {meant.similarity:.2f})")
        return meant.value, Source.INFERRED
    return DEFAULTS.arc, Source.DEFAULT


def _energy(prompt: str) -> tuple[float, Source]:
    """Energy 0-1 by meaning: nearer the "high" sentences than the "low" ones means more."""
    anchors = _mood_data()["energy"]
    low, high = tuple(anchors["low"]), tuple(anchors["high"])
    similarity = embed.rank(prompt, low + high)
    lean = float(similarity[len(low):].mean() - similarity[:len(low)].mean()) - ENERGY_CENTRE
    said_high = bool(_find_words(prompt, anchors["high_words"]))
    said_low = bool(_find_words(prompt, anchors["low_words"]))
    if said_high != said_low:  # said outright, one way only: at least (at most) that side's bound
        value = 0.5 + lean * ENERGY_SCALE
        value = max(value, anchors["high_words_energy"]) if said_high else min(value, anchors["low_words_energy"])
        return round(min(1.0, max(0.0, value)), 2), Source.INFERRED
    if abs(lean) < ENERGY_MIN_LEAN:
        return DEFAULTS_ENERGY, Source.DEFAULT
    return round(min(1.0, max(0.0, 0.5 + lean * ENERGY_SCALE)), 2), Source.INFERRED


def warm_up() -> None:
    """Load the text model and embed every style and mood description now, not on the first request.

    The server runs this in a background thread at start, so it reports SERVING at once and the
    first Describe finds the model (or waits only for what is left of the load).
    """
    _style("", GENERIC_MUSIC)
    _mood("", GENERIC_MUSIC)
    _energy(GENERIC_MUSIC)


def understand(prompt: str, overrides: Overrides = Overrides()) -> MusicSpec:
    """Resolve a prompt and overrides into a MusicSpec; SpecError names any bad field."""
    prompt = check_prompt(prompt)
    text = hedges_blanked(prompt.lower())
    sources: dict[str, Source] = {}
    notes: list[str] = []

    fuzzy = fuzzy_text(text)
    style, sources["style"], style_span, style_note = _style(text, fuzzy)
    if style_note:
        notes.append(style_note)
    mood, sources["mood"] = _mood(text, fuzzy)
    energy, sources["energy"] = _energy(fuzzy)

    if overrides.tempo_bpm is not None:
        tempo, sources["tempo_bpm"] = check_tempo(overrides.tempo_bpm), Source.EXPLICIT
    else:
        tempo, sources["tempo_bpm"] = _parse_tempo(number_text(text))
        if (tempo is not None and sources["tempo_bpm"] is Source.INFERRED and tempo >= FAST_WORD_BPM
                and style_span != (0, 0)):
            tempo = max(tempo, style.tempo[1])  # "fast drum and bass" is fast for drum and bass
        if tempo is None:
            # A style named by keyword knows its tempo best; one only near by meaning, less than the mood.
            # Within its range, as lively as the prompt ("romantic dinner jazz" near its slow end, "energetic
            # punk rock" near its fast one); a prompt that says nothing of energy gets the range's middle.
            if sources["style"] is Source.INFERRED and not (style_note and sources["mood"] is Source.INFERRED):
                low, high = style.tempo
                tempo = float(round(low + (high - low) * energy)) if sources["energy"] is Source.INFERRED \
                    else style.typical_tempo
                sources["tempo_bpm"] = Source.INFERRED
            elif sources["mood"] is Source.INFERRED:
                tempo, sources["tempo_bpm"] = float(mood["tempo"]), Source.INFERRED
            else:
                tempo, sources["tempo_bpm"] = DEFAULTS.tempo_bpm, Source.DEFAULT

    if overrides.key is not None:
        key, sources["key"] = parse_key(overrides.key), Source.EXPLICIT
    else:
        key, key_source = _parse_key(text, prompt)
        sources["key"] = key_source or Source.DEFAULT
        if key is not None and key_source is Source.INFERRED:
            notes.append(f"a {key.mode} key was asked without a tonic: {key}")
        if key is None:
            drop = _DROP_TUNING_RE.search(text)  # "in drop D": the guitar's low string, the riff's tonic
            # a minor mood makes any style minor; else the style's idiom says (metal, tango), else the default
            minor_mood = sources["mood"] is Source.INFERRED and mood["mode"] == "minor"
            mode = "minor" if minor_mood else style.mode
            if drop:
                mode = mode or DEFAULTS.mode
                key, sources["key"] = parse_key(f"{drop.group(1)} {mode}"), Source.INFERRED
                notes.append(f"drop {drop.group(1).upper()} tuning: the key is {key}")
            elif mode == "minor":
                key, sources["key"] = Key(DEFAULT_TONIC["minor"], "minor"), Source.INFERRED
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
        bars, seconds = _parse_length(number_text(text))
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

    arc, sources["arc"] = _arc(text, notes)

    if _find_words(text, list(NO_SWING_WORDS)) or re.search(r"\b(?:no|without)\s+(?:any\s+)?swing", text):
        swing, sources["swing"] = False, Source.EXPLICIT
    elif _find_words(text, list(SWING_WORDS)):
        swing, sources["swing"] = True, Source.EXPLICIT
    else:
        swing = style.swing
        sources["swing"] = Source.INFERRED if sources["style"] is Source.INFERRED else Source.DEFAULT

    if overrides.quantize is not None:
        quantize, sources["quantize"] = bool(overrides.quantize), Source.EXPLICIT
    elif _find_words(text, list(QUANTIZE_WORDS)):
        quantize, sources["quantize"] = True, Source.EXPLICIT
    else:
        quantize, sources["quantize"] = False, Source.DEFAULT

    for _, _, word in _find_words(text, list(phrases.unhonoured())):
        notes.append(f"\"{word}\": {phrases.unhonoured()[word]}")
    scale = catalog_words.asked_scale(text, "minor" if (key.scale_pcs()[2] - key.tonic_pc) % 12 == 3 else "major")
    if scale is not None:
        notes.append(f"\"{scale[0]}\": every pitched note is kept to it, "
                     f"{' '.join(str(step) for step in scale[1])} semitones above {key.tonic}")
    quiet = (sources["mood"] is Source.INFERRED and mood["name"] in QUIET_MOODS) or energy < QUIET_ENERGY
    parts, sources["parts"] = _parts(text, style, style_span, notes, quiet=quiet,
                                     band=sources["style"] is not Source.DEFAULT or _BAND_RE.search(text) is not None)
    if not parts:
        raise SpecError("prompt", "leaves no instrument to play; name at least one that is not excluded")

    from engine.understand.chords import apply_chords

    return apply_chords(MusicSpec(
        prompt=prompt, tempo_bpm=tempo, key=key, meter=meter, bars=bars, start_bar=start_bar,
        parts=parts, style=style.name, mood=mood["name"], arc=arc, swing=swing, seed=seed,
        energy=energy, quantize=quantize, sources=sources, notes=notes,
    ), overrides.chords)

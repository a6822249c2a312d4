"""Chord symbols and Roman numerals as music theory: what tones a chord names, one chord per bar.

Chord symbols: a root (C, F#, Bb, E♭) and a quality: ``m``/``min``/``-`` minor, ``maj7``/``M7``/
``Δ7`` major seventh, ``7`` dominant seventh, ``m7``, ``dim``/``°``, ``dim7``/``°7``, ``m7b5``/``ø``,
``aug``/``+``, ``sus2``, ``sus4``/``sus``, ``6``, ``m6``, ``9``, ``maj9``, ``m9``, ``add9``, and an
optional slash bass (``C/E``: read as the chord; the bass line still plays its root). Roman
numerals are read in a key: ``I V vi IV``, ``ii7-V7-Imaj7``, ``i bVII bVI V`` (upper case major,
lower case minor, ``°`` diminished, ``b``/``#`` before the numeral for a borrowed root).

A spec's ``chords`` (engine/understand/chords.py reads them from the prompt) are played one per
bar from the clip's first bar, repeated to its length (`bar_chords`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import SpecError
from engine.music.theory import Key, pitch_class

# Quality -> intervals above the root (the first three: root, third-like tone, fifth-like tone;
# then a seventh or sixth, then tensions). The arranger plays the first four as the chord.
QUALITIES: dict[str, tuple[int, ...]] = {
    "": (0, 4, 7), "m": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "m7": (0, 3, 7, 10), "mmaj7": (0, 3, 7, 11),
    "m7b5": (0, 3, 6, 10), "dim7": (0, 3, 6, 9), "6": (0, 4, 7, 9), "m6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 2), "maj9": (0, 4, 7, 11, 2), "m9": (0, 3, 7, 10, 2), "add9": (0, 4, 7, 2),
    "7sus4": (0, 5, 7, 10),
}
# Other spellings of the qualities above.
ALIASES = {
    "min": "m", "-": "m", "mi": "m", "M": "", "maj": "", "major": "", "minor": "m",
    "M7": "maj7", "Δ": "maj7", "Δ7": "maj7", "ma7": "maj7", "j7": "maj7", "min7": "m7", "-7": "m7", "mi7": "m7",
    "°": "dim", "o": "dim", "°7": "dim7", "o7": "dim7", "ø": "m7b5", "ø7": "m7b5", "-7b5": "m7b5", "min7b5": "m7b5",
    "+": "aug", "sus": "sus4", "dom7": "7", "M9": "maj9", "min9": "m9", "-9": "m9", "mM7": "mmaj7",
    "min6": "m6", "-6": "m6", "7sus": "7sus4",
}
_QUALITY_WORDS = sorted({*QUALITIES, *ALIASES}, key=len, reverse=True)
_QUALITY_RE = "|".join(re.escape(q) for q in _QUALITY_WORDS if q)
SYMBOL_RE = re.compile(rf"([A-G])([#♯b♭]?)((?:{_QUALITY_RE})?)(?:/([A-G][#♯b♭]?))?")
ROMAN_RE = re.compile(r"([#♯b♭]?)(VII|VI|IV|V|III|II|I|vii|vi|iv|v|iii|ii|i)(°|o|ø|\+)?(maj7|M7|7|9)?")
_ROMAN_DEGREE = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
_MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
SPLIT = re.compile(r"[\s,|–—]+|(?<=\S)-(?=\S)")  # spaces, commas, bars, dashes between tokens
PROGRESSION_MAX = 64


@dataclass(frozen=True)
class ChordSymbol:
    """One chord: its name as written, root pitch class, intervals, and the bass pitch class."""

    name: str
    root_pc: int
    intervals: tuple[int, ...]
    bass_pc: int

    @property
    def pcs(self) -> tuple[int, int, int]:
        """(root, third, fifth) pitch classes (sus chords: the suspended tone for the third)."""
        return tuple((self.root_pc + i) % 12 for i in self.intervals[:3])

    @property
    def tones(self) -> tuple[int, ...]:
        """The chord as the arranger plays it: root, third, fifth and a seventh or sixth if named."""
        return tuple((self.root_pc + i) % 12 for i in self.intervals[:4])

    @property
    def all_pcs(self) -> frozenset[int]:
        """Every pitch class of the chord, tensions and slash bass included."""
        return frozenset({(self.root_pc + i) % 12 for i in self.intervals} | {self.bass_pc})


def parse_symbol(token: str) -> ChordSymbol | None:
    """A chord symbol such as ``Am7``, ``F#m7b5``, ``Bbmaj7``, ``C/E``; None if the token is not one."""
    match = SYMBOL_RE.fullmatch(token)
    if not match:
        return None
    letter, accidental, quality, bass = match.groups()
    quality = ALIASES.get(quality, quality)
    if quality not in QUALITIES:
        return None
    root = pitch_class(letter + accidental)
    return ChordSymbol(token, root, QUALITIES[quality], pitch_class(bass) if bass else root)


def parse_roman(token: str, key: Key) -> ChordSymbol | None:
    """A Roman numeral such as ``vi``, ``V7``, ``bVII``, ``ii°`` in ``key``; None if the token is not one."""
    match = ROMAN_RE.fullmatch(token)
    if not match:
        return None
    accidental, numeral, alteration, seventh = match.groups()
    degree = _ROMAN_DEGREE[numeral.lower()]
    if key.mode in ("minor", "aeolian") and not accidental:
        steps = key.scale_pcs()
        root = steps[degree]
    else:
        root = (key.tonic_pc + _MAJOR_STEPS[degree]) % 12
    root = (root + {"#": 1, "♯": 1, "b": -1, "♭": -1, "": 0}[accidental]) % 12
    minor = numeral.islower()
    if alteration in ("°", "o"):
        quality = "dim7" if seventh == "7" else "dim"
    elif alteration == "ø":
        quality = "m7b5"
    elif alteration == "+":
        quality = "aug"
    elif seventh in ("maj7", "M7"):
        quality = "mmaj7" if minor else "maj7"
    elif seventh == "7":
        quality = "m7" if minor else "7"
    elif seventh == "9":
        quality = "m9" if minor else "9"
    else:
        quality = "m" if minor else ""
    return ChordSymbol(token, root, QUALITIES[quality], root)


def parse_progression(text: str, key: Key, field: str = "chords") -> list[ChordSymbol]:
    """Every chord of ``text`` (symbols or Roman numerals in ``key``); SpecError naming ``field`` for a bad one."""
    tokens = [t for t in SPLIT.split(text.strip()) if t.strip("-")]
    if not tokens:
        raise SpecError(field, "is empty; give chord symbols (Am7 Dm7 G7 Cmaj7) or Roman numerals (I V vi IV)")
    if len(tokens) > PROGRESSION_MAX:
        raise SpecError(field, f"has {len(tokens)} chords; at most {PROGRESSION_MAX} (one per bar)")
    chords = []
    for token in tokens:
        chord = parse_symbol(token) or parse_roman(token, key)
        if chord is None:
            raise SpecError(field, f"{token!r} is not a chord; accepted: a root A-G with #/b and a quality "
                                   f"({', '.join(q or 'major' for q in list(QUALITIES)[:12])}, ...), an optional "
                                   "/bass, or a Roman numeral (I-VII, lower case minor, b/# before it)")
        chords.append(chord)
    return chords


def key_of(chords: list[ChordSymbol]) -> Key:
    """The major or minor key whose scale holds most of the chords' tones; ties go to the key
    whose tonic is the first chord's root (then the last chord's, then major)."""
    from engine.music.theory import spell

    best = None
    for tonic in range(12):
        for mode in ("major", "minor"):
            scale = set(Key(spell(tonic, mode), mode).scale_pcs())
            fit = sum(len(c.all_pcs & scale) - len(c.all_pcs - scale) for c in chords)
            first = chords[0].root_pc == tonic and (mode == "minor") == (chords[0].intervals[1] == 3)
            last = chords[-1].root_pc == tonic and (mode == "minor") == (chords[-1].intervals[1] == 3)
            rank = (fit, first, last, mode == "major")
            if best is None or rank > best[0]:
                best = (rank, Key(spell(tonic, mode), mode))
    return best[1]


def symbol_name(chord: ChordSymbol, key: Key) -> str:
    """The chord as a symbol spelled for the key: D, Bm, F#m7b5, Bbmaj7."""
    from engine.music.theory import spell

    quality = {intervals: name for name, intervals in QUALITIES.items()}.get(chord.intervals, "?")
    return spell(chord.root_pc, "minor" if key.mode == "minor" else "major") + quality


def bar_chords(spec) -> list[ChordSymbol]:
    """The spec's progression as one chord per bar of the clip (empty if it names none)."""
    if not spec.chords:
        return []
    chords = [parse_symbol(name) or parse_roman(name, spec.key) for name in spec.chords]
    return [chords[bar % len(chords)] for bar in range(spec.bars)]


# The qualities a chord track is read as (tensions and sixths are heard as the chord under them).
DETECTED_QUALITIES = ("", "m", "7", "maj7", "m7", "dim", "m7b5", "dim7", "aug", "sus4", "sus2")
_DETECT_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def chords_of_score(score) -> list[str]:
    """One chord symbol per bar of a chord track (a symusic Score: every pitched track together).

    Each bar's notes are weighed by how long they sound; the chord is the root and quality whose
    tones hold most of that weight, less what sounds outside it and what it lacks, with the
    bar's lowest note preferred as the root. A silent bar repeats the chord before it. Bars are
    measured in the score's first time signature (4/4 if it has none).
    """
    import numpy as np

    tpq = score.ticks_per_quarter
    meter = score.time_signatures[0] if len(score.time_signatures) else None
    numerator, denominator = (meter.numerator, meter.denominator) if meter else (4, 4)
    bar_ticks = int(tpq * 4 * numerator / denominator)
    notes = [n for t in score.tracks if not t.is_drum for n in t.notes]
    if not notes:
        raise SpecError("chords", "the chord file has no pitched notes")
    bars = max(n.time + n.duration for n in notes) // bar_ticks + (1 if max(
        n.time + n.duration for n in notes) % bar_ticks else 0)
    names: list[str] = []
    for bar in range(min(bars, PROGRESSION_MAX)):
        start, end = bar * bar_ticks, (bar + 1) * bar_ticks
        weight = np.zeros(12)
        lowest = None
        for note in notes:
            overlap = min(end, note.time + note.duration) - max(start, note.time)
            if overlap > 0:
                weight[note.pitch % 12] += overlap
                lowest = note.pitch if lowest is None else min(lowest, note.pitch)
        if not weight.any():
            if names:
                names.append(names[-1])
            continue
        best = None
        for root in range(12):
            for quality in DETECTED_QUALITIES:
                tones = {(root + i) % 12 for i in QUALITIES[quality]}
                inside = sum(weight[pc] for pc in tones)
                missing = sum(1 for pc in tones if weight[pc] == 0)
                fit = inside - (weight.sum() - inside) - missing * weight.max() * 0.5
                fit += weight.max() * 0.25 * (lowest % 12 == root) - len(tones) * 1e-6  # plain over fancy
                if best is None or fit > best[0]:
                    best = (fit, _DETECT_NAMES[root] + quality)
        names.append(best[1])
    if not names:
        raise SpecError("chords", "the chord file has no pitched notes")
    return names

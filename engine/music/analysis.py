"""Key and chord detection on notes: what an input clip is in, detected rather than assumed.

The key is found by the Krumhansl-Schmuckler method: the clip's duration-weighted
pitch-class histogram is correlated with the Krumhansl-Kessler major and minor profiles in
all twelve rotations, and the best correlation wins. Chords are found per bar by scoring the
key's seven diatonic triads (and in minor the major dominant) against the bar's pitch
classes: the lowest note gets a bonus, since it usually carries the root, and a sounding
third of the other quality counts against a chord.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.errors import SpecError
from engine.music.notes import GridNote
from engine.music.theory import Key, Meter, spell

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


@dataclass(frozen=True)
class Chord:
    """A diatonic triad in a key: its scale degree (1-7), root pitch class and name."""
    degree: int
    root_pc: int
    quality: str  # "", "m" or "dim"

    @property
    def pcs(self) -> tuple[int, int, int]:
        """(root, third, fifth) pitch classes."""
        third = 3 if self.quality in ("m", "dim") else 4
        fifth = 6 if self.quality == "dim" else 7
        return self.root_pc, (self.root_pc + third) % 12, (self.root_pc + fifth) % 12

    @property
    def name(self) -> str:
        return f"{spell(self.root_pc, 'major' if self.quality != 'm' else 'minor')}{self.quality}"


def pitch_class_histogram(notes: Iterable[GridNote]) -> np.ndarray:
    """Total duration per pitch class."""
    histogram = np.zeros(12)
    for note in notes:
        histogram[note.pitch % 12] += max(1, note.duration)
    return histogram


def find_key(notes: Iterable[GridNote]) -> tuple[Key, float]:
    """The most likely major or minor key and its correlation (Krumhansl-Schmuckler)."""
    histogram = pitch_class_histogram(notes)
    if histogram.sum() == 0:
        raise ValueError("no pitched notes to find a key in")
    best: tuple[float, int, str] = (-2.0, 0, "major")
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1])
            if np.isnan(r):
                r = -1.0
            if r > best[0] + 1e-12:
                best = (r, tonic, mode)
    r, tonic, mode = best
    return Key(spell(tonic, mode), mode), r


def diatonic_triads(key: Key) -> list[Chord]:
    """The seven triads built on the key's scale; in minor also the major V of harmonic minor."""
    scale = key.scale_pcs()
    chords = []
    for i in range(7):
        root, third, fifth = scale[i], scale[(i + 2) % 7], scale[(i + 4) % 7]
        third_size, fifth_size = (third - root) % 12, (fifth - root) % 12
        quality = "" if third_size == 4 else ("dim" if fifth_size == 6 else "m")
        chords.append(Chord(i + 1, root, quality))
    if key.mode == "minor":
        chords.append(Chord(5, scale[4], ""))  # the leading tone makes the dominant major
    return chords


# A planned chord (compose's harmonic plan) wins over another that explains the notes about as well.
PLAN_BONUS = 0.2


def chord_of(notes: list[GridNote], key: Key, prefer: Chord | None = None) -> Chord:
    """The diatonic triad that best explains the notes (tonic if there are none; ``prefer`` if
    there are none and it is given, and a bonus for it otherwise)."""
    triads = diatonic_triads(key)
    if not notes:
        return prefer or triads[0]
    weights = pitch_class_histogram(notes)
    present = set(np.flatnonzero(weights))
    bass_pc = min(notes, key=lambda n: n.pitch).pitch % 12 if len(present) > 1 else -1  # one pitch: no bass
    best, best_score = triads[0], -1.0
    for chord in triads:
        pcs = set(chord.pcs)
        score = sum(weights[pc] for pc in pcs) / weights.sum()
        score -= 0.5 * sum(weights[pc] for pc in present if pc not in pcs and (pc - chord.root_pc) % 12 in (3, 4)
                           ) / weights.sum()  # the other third sounds: the wrong quality
        score += 0.25 * (bass_pc == chord.root_pc) + 0.1 * (chord.root_pc == key.tonic_pc)
        score -= 0.35 * (chord.quality == "dim")
        score += PLAN_BONUS * (chord == prefer)
        if score > best_score + 1e-12:
            best, best_score = chord, score
    return best


def chords_per_bar(notes: Iterable[GridNote], key: Key, meter: Meter, bars: int, tpq: int,
                   plan: list[Chord] | None = None) -> list[Chord]:
    """One detected chord per bar; a note counts in every bar it sounds in. ``plan`` (a chord per
    bar the notes were written to) is preferred where it explains them about as well."""
    bar_ticks = meter.bar_ticks(tpq)
    per_bar: list[list[GridNote]] = [[] for _ in range(bars)]
    for note in notes:
        first, last = note.time // bar_ticks, (note.time + max(1, note.duration) - 1) // bar_ticks
        for bar in range(max(0, first), min(bars - 1, last) + 1):
            start = max(note.time, bar * bar_ticks)
            end = min(note.time + note.duration, (bar + 1) * bar_ticks)
            per_bar[bar].append(GridNote(start, end - start, note.pitch))
    return [chord_of(bar_notes, key, plan[bar] if plan and bar < len(plan) else None)
            for bar, bar_notes in enumerate(per_bar)]


def seventh_pc(chord: Chord, key: Key) -> int:
    """The chord's diatonic seventh: the scale tone a seventh above its root (V7's is the fourth degree)."""
    return key.scale_pcs()[(chord.degree - 1 + 6) % 7]


def roman(chord: Chord) -> str:
    """Roman numeral of a diatonic chord (upper case major, lower case minor)."""
    numeral = _ROMAN[chord.degree - 1]
    return numeral if chord.quality == "" else numeral.lower() + ("°" if chord.quality == "dim" else "")


def score_notes(score, include_drums: bool = False) -> list[GridNote]:
    """Every note of a symusic Score (drum tracks left out unless asked)."""
    return [GridNote(int(n.time), int(n.duration), int(n.pitch))
            for track in score.tracks if include_drums or not track.is_drum for n in track.notes]


@dataclass(frozen=True)
class ClipReading:
    """What a MIDI clip says about itself: its pitched notes at ``tpq``, meter, tempo, detected key, length."""
    clip: object  # the symusic Score at ``tpq`` ticks per quarter
    notes: list[GridNote]
    meter: Meter
    tempo_bpm: float
    key: Key
    key_correlation: float
    bar_ticks: int
    bars: int


def read_clip(clip, tpq: int, default_tempo: float, purpose: str = "") -> ClipReading:
    """Read a clip's facts, detecting its key (never assuming it); SpecError naming ``midi`` if it
    has no pitched notes. ``purpose`` completes that message ("to continue")."""
    if clip.ticks_per_quarter != tpq:
        clip = clip.resample(tpq)
    notes = score_notes(clip)
    if not notes:
        raise SpecError("midi", f"has no pitched notes{' ' + purpose if purpose else ''} (drum tracks are not read)")
    signature = clip.time_signatures[0] if len(clip.time_signatures) else None
    meter = Meter(signature.numerator, signature.denominator) if signature else Meter(4, 4)
    tempo = float(clip.tempos[0].qpm) if len(clip.tempos) else default_tempo
    key, correlation = find_key(notes)
    bar_ticks = meter.bar_ticks(tpq)
    bars = max(1, -(-max(n.time + n.duration for n in notes) // bar_ticks))
    return ClipReading(clip, notes, meter, tempo, key, correlation, bar_ticks, bars)


_SATB = {"soprano": 0, "alto": 1, "tenor": 2, "bass": 3}


def assign_slots(score) -> list[tuple[object, int]]:
    """(track, slot) for the pitched tracks of a score: top voice = 0 (melody), lowest = 3 (bass).

    Tracks named Soprano/Alto/Tenor/Bass keep those voices; otherwise tracks are ordered by
    mean pitch. At most four tracks are used (the busiest inner ones).
    """
    tracks = [t for t in score.tracks if not t.is_drum and len(t.notes) > 0]
    named = {t.name.strip().lower(): t for t in tracks}
    if all(name in named for name in _SATB):
        return [(named[name], slot) for name, slot in _SATB.items()]
    tracks.sort(key=lambda t: -float(np.mean([n.pitch for n in t.notes])))
    if len(tracks) == 1:
        return [(tracks[0], 0)]
    if len(tracks) == 2:
        return [(tracks[0], 0), (tracks[1], 3)]
    inner = sorted(tracks[1:-1], key=lambda t: -len(t.notes))[:2]
    inner.sort(key=lambda t: -float(np.mean([n.pitch for n in t.notes])))
    return [(tracks[0], 0)] + [(t, 1 + i) for i, t in enumerate(inner)] + [(tracks[-1], 3)]

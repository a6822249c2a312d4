"""Compose: MusicSpec -> Score (symusic), by a rule-based arranger that reads style data.

This is Cadenza's first generator: not a learned model, but exact by construction.
Every pitched note is drawn from the asked key's scale, every onset lies on the asked
meter's grid inside the asked number of bars, and tempo and meter are written as asked.
Grooves, bass and comping patterns come from engine/data/styles.toml.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from symusic import KeySignature, Note, Score, Tempo, TimeSignature, Track

from engine import styles
from engine.config import TICKS_PER_QUARTER
from engine.errors import Cancelled
from engine.spec import MusicSpec, Part
from engine.theory import Meter

DRUM_NOTES = {"kick": 36, "snare": 38, "hat": 42, "ride": 51, "crash": 49}
PATTERN_VELOCITY = {"X": 112, "x": 92, "g": 48}
ARC_RANGE = {"steady": (1.0, 1.0), "crescendo": (0.55, 1.1), "decrescendo": (1.05, 0.45)}
# Where each role sits, before the instrument's own range narrows it.
ROLE_REGISTER = {"melody": (60, 84), "chords": (52, 76), "keys": (64, 86), "pad": (48, 76),
                 "bass": (28, 52)}


@dataclass(frozen=True)
class Grid:
    """The meter as ticks: bar length, grid step, and where each beat group starts."""

    bar_ticks: int
    step_ticks: int
    steps: int
    group_starts: tuple[int, ...]  # in steps

    @classmethod
    def of(cls, meter: Meter) -> Grid:
        bar_ticks = round(meter.quarters_per_bar * TICKS_PER_QUARTER)
        beat_ticks = TICKS_PER_QUARTER * 4 // meter.denominator
        step_ticks = min(TICKS_PER_QUARTER // 4, beat_ticks)
        steps = bar_ticks // step_ticks
        per_beat = beat_ticks // step_ticks
        if meter.denominator >= 8 and meter.numerator % 3 == 0 and meter.numerator > 3:
            sizes = [3] * (meter.numerator // 3)          # compound: 6/8, 9/8, 12/8
        elif meter.denominator >= 8 and meter.numerator > 3:
            sizes = [2] * ((meter.numerator - 3) // 2) + [3] * (1 + (meter.numerator - 3) % 2)
            if sum(sizes) != meter.numerator:              # odd: 5/8 = 2+3, 7/8 = 2+2+3
                sizes = [2] * (meter.numerator // 2 - 1) + [3]
        else:
            sizes = [1] * meter.numerator                   # simple: every beat a group
        starts, at = [], 0
        for size in sizes:
            starts.append(at * per_beat)
            at += size
        return cls(bar_ticks, step_ticks, steps, tuple(starts))


def _pattern(style: styles.Style, name: str, grid: Grid, meter: Meter) -> str | None:
    """The style's pattern for this meter, or a generic one built from the beat groups."""
    written = style.patterns.get(name)
    if written and (meter.numerator, meter.denominator) == (4, 4):
        return written
    if written is None and name not in ("kick", "snare", "hat", "bass", "comp"):
        return None
    cells = ["-"] * grid.steps
    starts = grid.group_starts
    eighth = max(1, (TICKS_PER_QUARTER // 2) // grid.step_ticks)
    if name == "kick":
        for i, s in enumerate(starts):
            if i % 2 == 0:
                cells[s] = "X" if i == 0 else "x"
    elif name == "snare":
        for i, s in enumerate(starts):
            if i % 2 == 1:
                cells[s] = "X"
    elif name == "hat":
        for s in range(0, grid.steps, eighth):
            cells[s] = "x"
    elif name == "bass":
        for i, s in enumerate(starts):
            cells[s] = "R" if i % 2 == 0 else "5"
    elif name == "comp":
        for s in starts:
            cells[s] = "x"
    return "".join(cells)


def _scale_pitches(spec: MusicSpec, low: int, high: int) -> list[int]:
    pcs = set(spec.key.scale_pcs())
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def _chord_pcs(spec: MusicSpec, degree: int) -> tuple[int, int, int]:
    scale = spec.key.scale_pcs()
    i = degree - 1
    return scale[i % 7], scale[(i + 2) % 7], scale[(i + 4) % 7]


def _register(part: Part) -> tuple[int, int]:
    lo, hi = ROLE_REGISTER.get(part.role, (part.low, part.high))
    lo, hi = max(lo, part.low), min(hi, part.high)
    if hi - lo < 12:  # the role's register misses the instrument: use the instrument's middle
        mid = (part.low + part.high) // 2
        lo, hi = max(part.low, mid - 9), min(part.high, mid + 9)
    return lo, hi


def _nearest(pc: int, target: int, lo: int, hi: int) -> int:
    candidates = [p for p in range(lo, hi + 1) if p % 12 == pc]
    if not candidates:  # range narrower than an octave: fold the target into it
        candidates = [p for p in range(max(0, lo - 12), min(127, hi + 12) + 1) if p % 12 == pc]
    return min(candidates, key=lambda p: abs(p - target))


class _Writer:
    """Collects notes for one part, clipped to the clip, with swing and the dynamics arc."""

    def __init__(self, spec: MusicSpec, grid: Grid, track: Track) -> None:
        self.spec, self.grid, self.track = spec, grid, track
        self.end = spec.bars * grid.bar_ticks
        first, last = ARC_RANGE.get(spec.arc, (1.0, 1.0))
        self.arc = np.linspace(first, last, spec.bars) if spec.bars > 1 else np.array([first])

    def add(self, bar: int, step: int, length_steps: float, pitch: int, velocity: int) -> None:
        grid = self.grid
        start = bar * grid.bar_ticks + step * grid.step_ticks
        if self.spec.swing and grid.step_ticks * 4 == TICKS_PER_QUARTER and step % 4 == 2:
            start += TICKS_PER_QUARTER // 6  # swung eighth: the off-beat moves to the triplet
        duration = max(1, int(length_steps * grid.step_ticks))
        duration = min(duration, self.end - start)
        if duration <= 0 or not 0 <= pitch <= 127:
            return
        v = int(np.clip(round(velocity * self.arc[bar]), 1, 127))
        self.track.notes.append(Note(start, duration, int(pitch), v))


def _onsets(pattern: str) -> list[tuple[int, str, int]]:
    """(step, char, length in steps until the next onset or the bar end) for each onset."""
    hits = [i for i, c in enumerate(pattern) if c != "-"]
    return [(s, pattern[s], (hits[k + 1] if k + 1 < len(hits) else len(pattern)) - s)
            for k, s in enumerate(hits)]


def _drums(w: _Writer, style: styles.Style, grid: Grid, meter: Meter, rng: np.random.Generator) -> None:
    names = ["kick", "snare", "ride" if "ride" in style.patterns else "hat"]
    for bar in range(w.spec.bars):
        for name in names:
            pattern = _pattern(style, name, grid, meter)
            if not pattern:
                continue
            for step, char, _ in _onsets(pattern):
                w.add(bar, step, 1, DRUM_NOTES[name], PATTERN_VELOCITY[char] + int(rng.integers(-6, 7)))
        if bar % 4 == 0:
            w.add(bar, 0, 2, DRUM_NOTES["crash"], 100)


def _bass(w: _Writer, part: Part, style: styles.Style, grid: Grid, meter: Meter,
          chords: list[int], rng: np.random.Generator) -> None:
    lo, hi = _register(part)
    target = lo + 10
    per_beat = max(1, (TICKS_PER_QUARTER * 4 // meter.denominator) // grid.step_ticks)
    scale = _scale_pitches(w.spec, lo, hi)
    for bar, degree in enumerate(chords):
        root, third, fifth = _chord_pcs(w.spec, degree)
        root_pitch = _nearest(root, target, lo, hi)
        if style.bass_idiom == "walking":
            next_root = _nearest(_chord_pcs(w.spec, chords[(bar + 1) % len(chords)])[0], target, lo, hi)
            beats = grid.steps // per_beat
            pitch = root_pitch
            for beat in range(beats):
                w.add(bar, beat * per_beat, per_beat, pitch, 88)
                step = 1 if next_root > pitch else -1
                idx = scale.index(pitch) if pitch in scale else 0
                pitch = scale[int(np.clip(idx + step * int(rng.integers(1, 3)), 0, len(scale) - 1))]
            continue
        pattern = _pattern(style, "bass", grid, meter) or "R"
        for step, char, length in _onsets(pattern):
            pitch = {"R": root_pitch, "5": _nearest(fifth, root_pitch + 5, lo, hi),
                     "8": root_pitch + 12 if root_pitch + 12 <= hi else root_pitch}[char]
            w.add(bar, step, max(1, length - 0.25), pitch, 96)


def _chords(w: _Writer, part: Part, style: styles.Style, grid: Grid, meter: Meter,
            chords: list[int], sustain: bool) -> None:
    lo, hi = _register(part)
    if part.role == "keys":  # the left hand of a keyboard part
        lo, hi = max(part.low, 48), max(part.low + 12, 64)
    centre = (lo + hi) // 2
    pattern = "x" + "-" * (grid.steps - 1) if sustain else (_pattern(style, "comp", grid, meter) or "x")
    for bar, degree in enumerate(chords):
        voicing = sorted(_nearest(pc, centre, lo, hi) for pc in _chord_pcs(w.spec, degree))
        for step, char, length in _onsets(pattern):
            for pitch in voicing:
                w.add(bar, step, max(1, length - 0.5) if not sustain else length, pitch,
                      PATTERN_VELOCITY.get(char, 90) - 14)


def _melody(w: _Writer, part: Part, grid: Grid, chords: list[int], rng: np.random.Generator) -> None:
    lo, hi = _register(part)
    scale = _scale_pitches(w.spec, lo, hi)
    # Denser melodies at slow tempi, sparser at fast ones: about 3-5 notes a second at most.
    step_seconds = grid.step_ticks / TICKS_PER_QUARTER * 60.0 / w.spec.tempo_bpm
    density = float(np.clip(0.22 / step_seconds * 0.25, 0.12, 0.55))
    motif_bars = 2
    motifs: list[list[int]] = []
    for _ in range(motif_bars):
        onsets = sorted(set(grid.group_starts) | {s for s in range(grid.steps) if rng.random() < density})
        motifs.append(onsets)
    pitch = scale[len(scale) // 2]
    tonic_pc = w.spec.key.tonic_pc
    for bar, degree in enumerate(chords):
        onsets = motifs[bar % motif_bars]
        chord = _chord_pcs(w.spec, degree)
        for k, step in enumerate(onsets):
            length = (onsets[k + 1] if k + 1 < len(onsets) else grid.steps) - step
            if step in grid.group_starts:  # strong beats land on chord tones
                pitch = _nearest(chord[int(rng.integers(0, 3))], pitch, lo, hi)
            else:
                idx = scale.index(pitch) if pitch in scale else len(scale) // 2
                idx = int(np.clip(idx + int(rng.choice([-2, -1, -1, 1, 1, 2])), 0, len(scale) - 1))
                pitch = scale[idx]
            if bar == len(chords) - 1 and k == len(onsets) - 1:
                pitch = _nearest(tonic_pc, pitch, lo, hi)  # the phrase closes on the tonic
            w.add(bar, step, max(1, length - 0.25), pitch, 86 + int(rng.integers(-8, 9)))


def compose(spec: MusicSpec, should_stop: Callable[[], bool] | None = None) -> Score:
    """A Score for the spec: one named track per part, tempo, meter and key written in.

    ``should_stop`` is polled between parts; when it returns true the work ends with Cancelled.
    """
    rng = np.random.default_rng(spec.seed)
    style = styles.get(spec.style)
    grid = Grid.of(spec.meter)
    progression = list(style.progressions[int(rng.integers(0, len(style.progressions)))])
    chords = [progression[bar % len(progression)] for bar in range(spec.bars)]
    if spec.bars > 1:
        chords[-1] = 1  # end home

    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=spec.tempo_bpm))
    score.time_signatures.append(TimeSignature(0, spec.meter.numerator, spec.meter.denominator))
    score.key_signatures.append(KeySignature(0, spec.key.fifths(), 0 if spec.key.mode == "major" else 1))
    for part in spec.parts:
        if should_stop and should_stop():
            raise Cancelled(f"stopped after {len(score.tracks)} of {len(spec.parts)} parts")
        track = Track(name=part.name, program=part.program, is_drum=part.is_drum)
        writer = _Writer(spec, grid, track)
        part_rng = np.random.default_rng([spec.seed, len(score.tracks)])
        if part.role == "drums":
            _drums(writer, style, grid, spec.meter, part_rng)
        elif part.role == "bass":
            _bass(writer, part, style, grid, spec.meter, chords, part_rng)
        elif part.role in ("chords", "pad"):
            _chords(writer, part, style, grid, spec.meter, chords, sustain=part.role == "pad")
        elif part.role == "keys":
            _chords(writer, part, style, grid, spec.meter, chords, sustain=False)
            _melody(writer, part, grid, chords, part_rng)
        else:
            _melody(writer, part, grid, chords, part_rng)
        track.notes.sort(key=lambda n: (n.time, n.pitch))
        score.tracks.append(track)
    return score

"""Compose: MusicSpec -> Score (symusic): every pitched part from a learned model, over a form.

The form (engine/compose/form.py) cuts the clip into phrases with sections that return (AABA,
ABAB), one chord per bar from the style's progressions, cadences where phrases end, or a cycling
loop for loop genres (engine/catalog/data/parts.toml). The part model (engine/model/parts.py,
trained on POP909's melodies and piano accompaniments) writes every melody, bass, comping, keys
and pad part bar by bar over those chords (engine/compose/learned.py), under constrained
decoding, so key, meter grid, bar count and ranges hold by construction; a style keeps its
idiomatic bass or comping rhythm where parts.toml says so and the model chooses the pitches. In
the styles the music21-corpus model knows (chorales, folk tunes, classical works: parts.toml
``corpus``) that model (engine/model/generator.py) writes the melody and keys voices some part
plays, never voices nobody hears, and its notes' chords (engine/music/analysis.py) lead the other
parts. Drums come from the drum model trained on the Groove MIDI Dataset (engine/compose/drums.py:
the style's Groove genre under its rules, fills where the form's phrases end, crashes where its
sections start, energy per section, learned velocity and micro-timing, grid-exact with the spec's
``quantize``), or, in styles whose percussion is not a kit, the style's ensemble strokes placed by
the form; hand percussion keeps its instrument's idiom and takes the drum model's velocity, timing
and fills (``_percussion``); a stride bass keeps the rule arranger. Tempo, meter and key are written
as asked; the dynamics arc and swing are applied to every part when the notes are written.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from symusic import ControlChange, KeySignature, Note, Score, Tempo, TimeSignature, Track

from engine.catalog import instruments, styles
from engine.catalog import words as phrases
from engine.compose import form
from engine.compose import learned as learned_parts
from engine.compose.drums import write_drums
from engine.compose.learned import Provenance
from engine.config import TICKS_PER_QUARTER
from engine.errors import Cancelled, SpecError, check_stop
from engine.model.tokens import SLOT_REGISTER, SLOTS
from engine.music.analysis import Chord, chords_per_bar, diatonic_triads, find_key, seventh_pc
from engine.music.chords import ChordSymbol, bar_chords
from engine.music.notes import GridNote
from engine.music.spec import MusicSpec, Part
from engine.music.theory import Key, Meter

PATTERN_VELOCITY = {"X": 112, "x": 92, "g": 48, "s": 92}
STAB_STEPS = 1  # a comping pattern's "s": a short stab (a reggae skank's chop), not held to the next onset
# Velocity scale at the first and last bar. With the drums' entry (below) a crescendo's rendered mix
# measured +4.5 to +5.8 LU from its first quarter to its last at (0.55, 1.1); the issue asks for 6.
ARC_RANGE = {"steady": (1.0, 1.0), "crescendo": (0.4, 1.1), "decrescendo": (1.05, 0.25)}
# A swell rises from the first value to the second at the middle of the clip and falls back.
SWELL_RANGE = (0.45, 1.1)
# A dip (a breakdown) falls from the first value to the second at the middle and comes back to the third.
DIP_RANGE = (1.05, 0.45, 1.1)
# In an arc the rhythm section (kit, percussion) is part of the change: it comes in after the first
# quarter of a crescendo, leaves for the last quarter of a decrescendo, plays the middle of a swell and
# rests for a quarter of the clip in the middle of a dip.
ARC_ENTRY_SHARE = 0.25
ARC_ENTRY_MIN_BARS = 4


def arc_curve(arc: str, bars: int) -> np.ndarray:
    """Velocity scale per bar for a dynamics arc ("steady", "crescendo", "decrescendo", "swell", "dip")."""
    if arc == "swell" and bars > 2:
        low, high = SWELL_RANGE
        rise = np.linspace(low, high, (bars + 1) // 2)
        return np.concatenate([rise, rise[::-1][bars % 2:]])[:bars]
    if arc == "dip" and bars > 2:
        first, low, last = DIP_RANGE
        half = (bars + 1) // 2
        return np.concatenate([np.linspace(first, low, half), np.linspace(low, last, bars - half + 1)[1:]])
    first, last = ARC_RANGE.get(arc, (1.0, 1.0))
    return np.linspace(first, last, bars) if bars > 1 else np.array([first])


def arc_rests(arc: str, bars: int, part: Part) -> frozenset[int]:
    """The bars a part rests in the arc: none, except the rhythm section's before its entry, after its
    exit, or in a dip's breakdown."""
    if part.role != "drums" or bars < ARC_ENTRY_MIN_BARS:
        return frozenset()
    edge = max(1, round(bars * ARC_ENTRY_SHARE))
    middle = (bars - edge) // 2
    rests = {"crescendo": range(edge), "decrescendo": range(bars - edge, bars),
             "swell": [*range(edge), *range(bars - edge, bars)], "dip": range(middle, middle + edge)}
    return frozenset(rests.get(arc, ()))


# Where each role sits, before the instrument's own range narrows it.
# Expression: a part that holds its notes (organs, bowed strings, ensembles, brass, reeds, pipes, synth
# leads and pads; not the plucked or struck programs among them) follows the arc inside its notes too, as a
# player would: CC11 (expression) carries the curve of arc_curve, and CC1 (modulation, vibrato depth)
# deepens as it grows. Velocity still carries the arc for a synth that ignores controllers.
SUSTAINED_PROGRAMS = (frozenset(range(16, 24)) | frozenset(range(40, 96))) - {45, 46, 47, 55}
EXPRESSION_FULL = 110            # CC11 at a velocity scale of 1.0: what a steady clip holds
MODULATION_RANGE = (8, 72)       # CC1 at the quietest and at the loudest point of an arc
EXPRESSION_POINTS_PER_BAR = 4
CC_EXPRESSION, CC_MODULATION = 11, 1


def expression_curve(arc: str, bars: int, bar_ticks: int) -> list[tuple[int, int, int]]:
    """(tick, CC11, CC1) points for a dynamics arc, four a bar, smooth between bar values; a value that
    does not change is not repeated (a steady clip is one point)."""
    scale = arc_curve(arc, bars)
    times = np.arange(bars * EXPRESSION_POINTS_PER_BAR) * bar_ticks // EXPRESSION_POINTS_PER_BAR
    values = np.interp(times, (np.arange(bars) + 0.5) * bar_ticks, scale)
    low, high = float(scale.min()), float(scale.max())
    depth = (values - low) / (high - low) if high > low else np.zeros_like(values)
    points: list[tuple[int, int, int]] = []
    for tick, value, share in zip(times, values, depth, strict=True):
        point = (int(np.clip(round(EXPRESSION_FULL * value), 1, 127)),
                 int(round(MODULATION_RANGE[0] + (MODULATION_RANGE[1] - MODULATION_RANGE[0]) * share)))
        if not points or points[-1][1:] != point:
            points.append((int(tick),) + point)
    return points


def add_expression(track: Track, part: Part, arc: str, bars: int, bar_ticks: int) -> None:
    """Write the arc's CC11 and CC1 curves into a sustained part's track (nothing for other parts)."""
    if part.is_drum or part.program not in SUSTAINED_PROGRAMS:
        return
    for tick, expression, modulation in expression_curve(arc, bars, bar_ticks):
        track.controls.append(ControlChange(tick, CC_EXPRESSION, expression))
        track.controls.append(ControlChange(tick, CC_MODULATION, modulation))


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
        bar_ticks = meter.bar_ticks()
        beat_ticks = meter.beat_ticks()
        step_ticks = min(TICKS_PER_QUARTER // 4, beat_ticks)
        steps = bar_ticks // step_ticks
        per_beat = beat_ticks // step_ticks
        return cls(bar_ticks, step_ticks, steps, tuple(beat * per_beat for beat in meter.group_starts))


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
    elif name == "bass" and written and "c" in written:
        # A stride (bass note, chord, ...): the beat groups alternate the low note (root, then
        # fifth) with the chord; an odd group count ends on a chord (3/4 R c c, 7/4 R c 5 c R c c).
        for i, s in enumerate(starts):
            last_odd = i == len(starts) - 1 and len(starts) % 2 == 1 and i > 0
            cells[s] = "c" if i % 2 == 1 or last_odd else ("R" if (i // 2) % 2 == 0 else "5")
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


# A chord as the arranger uses it: (root, third, fifth) pitch classes, and optionally the
# diatonic seventh (a style with sevenths in its voicings plays it).
ChordPcs = tuple[int, ...]


LOW_VOICE_REGISTER = (-6, 14)  # a tune on a low instrument: this far around its range's middle


def _register(part: Part, style: styles.Style | None = None) -> tuple[int, int]:
    """The pitches a part is written in: its role's register (the style's, where it has one: a jazz
    pianist comps around middle C) within the instrument's range. A tune on an instrument whose range
    centres below the melody register (cello, trombone, tenor sax, bassoon) sings in that instrument's
    own upper middle rather than at the top of its range."""
    default = ROLE_REGISTER.get(part.role, (part.low, part.high))
    lo, hi = dict(style.registers).get(part.role, default) if style else default
    mid = (part.low + part.high) // 2
    if part.role == "melody" and mid < lo:
        below, above = LOW_VOICE_REGISTER
        return max(part.low, mid + below), min(part.high, mid + above)
    lo, hi = max(lo, part.low), min(hi, part.high)
    if hi - lo < 12:  # the role's register misses the instrument: use the instrument's middle
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
        self.arc = arc_curve(spec.arc, spec.bars)

    def add(self, bar: int, step: int, length_steps: float, pitch: int, velocity: int, offset: float = 0.0) -> None:
        """A note at ``step`` of ``bar``; ``offset`` (in steps, the performance model's timing) moves its
        onset off the grid unless the spec asks for ``quantize``, never before its bar's start."""
        grid = self.grid
        start = bar * grid.bar_ticks + step * grid.step_ticks
        if self.spec.swing and grid.step_ticks * 4 == TICKS_PER_QUARTER and step % 4 == 2:
            start += TICKS_PER_QUARTER // 6  # swung eighth: the off-beat moves to the triplet
        if offset and not self.spec.quantize:
            start += max(-step * grid.step_ticks, round(offset * grid.step_ticks))
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


def _drums(w: _Writer, style: styles.Style, seed: int, clip_form: form.Form) -> None:
    """The drum part: the learned drum model in the style's Groove genre under its rules, or its ensemble
    percussion, over the clip's form (engine/compose/drums.py); the kick on every beat where the style has
    it or the prompt asks for it ("four on the floor")."""
    write_drums(w.track, meter=w.spec.meter, bars=w.spec.bars, tempo=w.spec.tempo_bpm, genre=style.drum_genre,
                seed=seed, quantize=w.spec.quantize, swing=w.spec.swing, dynamics=w.arc,
                four_on_the_floor=_four_on_the_floor(style) or phrases.asks_four_on_the_floor(w.spec.prompt),
                style=style.drums, clip_form=clip_form, energy=w.spec.energy)


def _four_on_the_floor(style: styles.Style) -> bool:
    """The style's kick pattern (styles.toml) strikes every beat and nothing else: the dance idiom."""
    kick = style.patterns.get("kick", "")
    return len(kick) == 16 and [i for i, c in enumerate(kick) if c != "-"] == [0, 4, 8, 12]


def drum_seed(seed: int, salt: int) -> int:
    """The drum model's sampling seed for a part: one number from the clip's seed and the part."""
    return int(np.random.SeedSequence([seed, salt]).generate_state(1)[0])


PERCUSSION_VELOCITY = (100, 80)  # a percussion part's stroke on a beat group's start, and elsewhere
PERCUSSION_MIN_VELOCITY = 40  # an idiom's stroke is heard even where the drummer played a ghost note
PERCUSSION_SALT = 4441  # the percussionist's drum-model seed differs from the kit's
FILL_VOICES = (1, 4, 5, 6)  # the drum model's snare and toms (engine/model/drums.py VOICE_PITCHES): a fill's
# strokes, which a hand drum plays high (snare, high tom) to low (low tom) on its keys
ACCENT_VOICES = (0, 1, 4, 5, 6)  # kick, snare, toms: where a hand drum's stroke takes the drummer's accent


def percussion_pattern(instrument: instruments.Instrument, grid: Grid, meter: Meter) -> str:
    """The instrument's idiom for one bar of the meter (instruments.toml `pattern`, or the beat groups)."""
    if (meter.numerator, meter.denominator) == (4, 4) and len(instrument.pattern) == grid.steps:
        return instrument.pattern
    cells = ["-"] * grid.steps
    eighth = max(1, (TICKS_PER_QUARTER // 2) // grid.step_ticks)
    for s in range(0, grid.steps, eighth):
        cells[s] = "2" if len(instrument.keys) > 1 else "1"
    for s in grid.group_starts:
        cells[s] = "1"
    return "".join(cells)


def _percussion(w: _Writer, instrument: instruments.Instrument, grid: Grid, meter: Meter, *,
                genre: str | None, seed: int, clip_form: form.Form | None = None,
                timeline: styles.Timeline | None = None) -> list[str]:
    """A hand drum, bell or shaker beside the kit, played by the drum model (trained on the Groove
    drummers) in the style's genre; returns each bar's provenance kind (a fill bar is "learned", an
    idiom bar "style_rhythm").

    What no drummer's data teaches stays the instrument's idiom (instruments.toml: a tumbao, a clave):
    its onsets and keys in every bar. The drum model, run as a second player with its own seed, gives
    each stroke its velocity and micro-timing (the drummer's accent at that step, or the bar's softest
    stroke where the drummer rests), and at every phrase end of ``clip_form`` (as the kit; without a
    form, every fourth bar) the part plays the drum model's fill instead, its snare and tom strokes
    moved onto the instrument's keys. A pitched
    program (taiko, melodic toms) is moved so its first key is the clip's tonic: its low strokes do not
    pull the key away. ``quantize`` keeps every stroke on its step. An instrument that plays the style's
    ``timeline`` (instruments.toml ``timeline = true``: the claves) plays its bars in place of its own
    pattern, from each phrase start and through the fills as the kit does, so the two play one clave.
    """
    from engine.compose.drums import STEP_TICKS, form_places, phrase_flags, phrase_positions, timeline_bar
    from engine.model.drums import load_default

    keys = list(instrument.keys)
    if not instrument.is_drum:
        shift = (w.spec.key.tonic_pc - keys[0]) % 12
        shift = shift - 12 if shift > 6 else shift
        keys = [k + shift for k in keys]
    pattern = percussion_pattern(instrument, grid, meter)
    bars = w.spec.bars
    patterns = [pattern] * bars
    plays_timeline = instrument.timeline and timeline is not None and grid.steps == 16
    if plays_timeline:
        patterns = [timeline_bar(timeline, p).replace("X", "1").replace("x", "1")
                    for p in phrase_positions(clip_form, bars)]
    if clip_form is not None:  # the form's phrase ends, as the kit's (a 32-bar clip's phrases are 8 bars)
        places = form_places(clip_form)
        fill, start = places["phrase_end"], places["phrase_start"]
    else:
        fill, start = phrase_flags(bars)
    hits = load_default().generate([grid.steps] * bars, genre, w.spec.tempo_bpm, fill, start, seed=seed)
    at: dict[tuple[int, int], list] = {}
    for hit in hits:
        at.setdefault((hit.bar, hit.step), []).append(hit)
    kinds = ["style_rhythm"] * bars

    def stroke(bar: int, step: int, key: int, velocity: int, offset: float) -> None:
        before = len(w.track.notes)
        w.add(bar, step, 1, key, velocity)
        if w.track.notes[before:] and not w.spec.quantize:
            note = w.track.notes[-1]
            note.time = int(min(max(0, note.time + round(offset * STEP_TICKS)), w.end - 1))
            note.duration = max(1, min(note.duration, w.end - note.time))  # a late stroke does not ring past the clip

    for bar in range(bars):
        in_bar = [hit for hit in hits if hit.bar == bar]
        strokes = [hit for hit in in_bar if hit.voice in FILL_VOICES]
        if fill[bar] and strokes and not plays_timeline:
            order = sorted({hit.voice for hit in strokes}, key=FILL_VOICES.index)
            for hit in strokes:
                key = keys[min(len(keys) - 1, order.index(hit.voice) * len(keys) // max(1, len(order)))]
                stroke(bar, hit.step, key, hit.velocity, hit.offset)
            kinds[bar] = "learned"
            continue
        # where the drummer rests, the idiom's stroke takes three quarters of the bar's middle velocity
        quiet = round(0.75 * float(np.median([hit.velocity for hit in in_bar]))) if in_bar else PERCUSSION_VELOCITY[1]
        for step, char, _ in _onsets(patterns[bar]):
            index = int(char) - 1 if char.isdigit() else 0
            accents = [hit for hit in at.get((bar, step), []) if hit.voice in ACCENT_VOICES] or at.get((bar, step), [])
            played = max(accents, key=lambda hit: hit.velocity) if accents else None
            velocity = max(PERCUSSION_MIN_VELOCITY, played.velocity if played else quiet)
            stroke(bar, step, keys[min(index, len(keys) - 1)], velocity, played.offset if played else 0.0)
    return kinds


APPROACH_MIN_ONSETS = 3  # a bass line this busy leads into the next bar's root


def _approach(scale: list[int], target: int, current: int) -> int:
    """The scale tone a step from ``target``, on the side ``current`` comes from: an approach note."""
    if target not in scale:
        return target
    idx = scale.index(target) + (1 if current > target else -1)
    return scale[idx] if 0 <= idx < len(scale) else target


# A stride left hand's touch: the bass note on the bar's downbeat leans in, the chords stay light.
STRIDE_VELOCITY = {"downbeat": 100, "bass": 90, "chord": (72, 64)}
STRIDE_OCTAVE_FLOOR = 28  # E1: a run's octave doubling goes up rather than below this (it would only rumble)


def _stride_break(w: _Writer, grid: Grid, scale: list[int], root_pitch: int, next_root: int,
                  lo: int, bar: int) -> None:
    """The bar that ends a strain's phrase: the left hand leaves its oom-pah for a run in octaves, one
    note a beat group, walking the scale from the bar's root into the next bar's root (where that walk is
    shorter than the bar, from further out on the root's side: F to D in four beats is F G F Eb, D); into the
    same root again, up from below it.
    Scale tones only: the key's rule keeps chromatic notes off the beat."""
    starts = list(grid.group_starts) + [grid.steps]
    count = len(starts) - 1
    here = scale.index(root_pitch) if root_pitch in scale else 0
    if next_root == root_pitch:  # the downbeat, then up the scale from below into the root again
        path = [root_pitch] + scale[max(0, here - count + 1):here]
    else:
        step = 1 if next_root > root_pitch else -1
        path = [root_pitch] + [p for p in range(root_pitch + step, next_root, step) if p in scale]
    if len(path) < count and next_root in scale:  # too short: the walk starts further out, on the root's side
        there = scale.index(next_root)
        side = 1 if root_pitch > next_root else -1
        approach = [scale[there + side * k] for k in range(count - 1, 0, -1) if 0 <= there + side * k < len(scale)]
        path = [root_pitch] + approach
    if len(path) < count:  # still too short (the scale's edge): the oom of root and fifth below first, then the walk
        fifth = scale[here - 3] if here >= 3 else scale[min(here + 4, len(scale) - 1)]
        pad = count - len(path)
        path = [root_pitch] * (pad % 2) + [root_pitch, fifth] * (pad // 2) + path
    path = path[:1] + path[len(path) - count + 1:]  # too long: the downbeat, then the run's end
    below = min(path) - 12 >= max(lo, STRIDE_OCTAVE_FLOOR)  # double the whole run on one side
    for k, pitch in enumerate(path):
        velocity = STRIDE_VELOCITY["downbeat"] if k == 0 else STRIDE_VELOCITY["bass"] + 2 * k
        length = max(1, starts[k + 1] - starts[k] - 0.5)
        for octave in (pitch, pitch - 12 if below else pitch + 12):
            w.add(bar, starts[k], length, octave, velocity)


def _bass(w: _Writer, part: Part, style: styles.Style, grid: Grid, meter: Meter,
          chords: list[ChordPcs], rng: np.random.Generator, breaks: frozenset[int] = frozenset()) -> None:
    """A rule-written bass line: the style's walking line, stride (``breaks``: the bars where a stride
    plays its run into the next phrase) or pattern over the chords."""
    lo, hi = _register(part, style)
    target = lo + 10
    per_beat = max(1, meter.beat_ticks() // grid.step_ticks)
    scale = _scale_pitches(w.spec, lo, hi)
    for bar, chord in enumerate(chords):
        root, third, fifth = chord[:3]
        root_pitch = _nearest(root, target, lo, hi)
        if style.bass_idiom == "walking":
            next_root = _nearest(chords[(bar + 1) % len(chords)][0], target, lo, hi)
            beats = grid.steps // per_beat
            pitch = root_pitch
            for beat in range(beats):
                w.add(bar, beat * per_beat, per_beat, pitch, 88)
                step = 1 if next_root > pitch else -1
                idx = scale.index(pitch) if pitch in scale else 0
                pitch = scale[int(np.clip(idx + step * int(rng.integers(1, 3)), 0, len(scale) - 1))]
            continue
        pattern = _pattern(style, "bass", grid, meter) or "R"
        onsets = _onsets(pattern)
        stride = "c" in pattern
        if stride and bar in breaks and bar + 1 < len(chords):
            _stride_break(w, grid, scale, root_pitch, _nearest(chords[bar + 1][0], target, lo, hi), lo, bar)
            continue
        pitch = root_pitch
        chord_strokes = 0
        for k, (step, char, length) in enumerate(onsets):
            if char == "c":  # the stride's chord, in the middle register above the bass notes
                velocity = STRIDE_VELOCITY["chord"][chord_strokes % 2]
                chord_strokes += 1
                for tone in _stride_chord(chord, style, part, w.spec.key.tonic_pc):
                    w.add(bar, step, max(1, length - 0.5), tone, velocity)
                continue
            if char == "p":  # a passing tone: a scale step from the last note toward the next one
                pitch = _passing(scale, pitch, _bass_target(onsets, k, bar, chords, root_pitch, lo, hi))
            else:
                pitch = _bass_tone(char, chord, root_pitch, lo, hi)
            if k == len(onsets) - 1 and k >= APPROACH_MIN_ONSETS - 1 and bar + 1 < len(chords):
                pitch = _approach(scale, _nearest(chords[bar + 1][0], pitch, lo, hi), pitch)
            velocity = 96 if not stride else STRIDE_VELOCITY["downbeat" if step == 0 else "bass"]
            w.add(bar, step, max(1, length - 0.25), pitch, velocity)


STRIDE_CHORD_REGISTER = (50, 66)  # a left hand's chord: D3-F#4, above the bass notes, below the melody


def _stride_chord(chord: ChordPcs, style: styles.Style, part: Part, tonic_pc: int) -> list[int]:
    """The chord a stride left hand plays between its bass notes: the full chord (with the style's
    seventh), closely voiced in the middle register, clipped to the part's range."""
    lo, hi = max(part.low, STRIDE_CHORD_REGISTER[0]), min(part.high, STRIDE_CHORD_REGISTER[1])
    if hi - lo < 12:
        lo, hi = max(part.low, hi - 12), hi
    centre = (lo + hi) // 2
    return sorted({_nearest(pc, centre, lo, hi) for pc in chord_tones(chord, style, False, tonic_pc)})


def _bass_tone(char: str, chord: ChordPcs, root_pitch: int, lo: int, hi: int) -> int:
    """The pitch a bass pattern character names on this chord (R root, 3, 5, 8 octave)."""
    root, third, fifth = chord[:3]
    return {"R": root_pitch, "3": _nearest(third, root_pitch + 3, lo, hi),
            "5": _nearest(fifth, root_pitch + 5, lo, hi),
            "8": root_pitch + 12 if root_pitch + 12 <= hi else root_pitch}.get(char, root_pitch)


def _bass_target(onsets: list[tuple[int, str, int]], k: int, bar: int, chords: list[ChordPcs],
                 root_pitch: int, lo: int, hi: int) -> int:
    """Where a passing tone at onset ``k`` leads: the next chord tone of the pattern, else the next bar's root."""
    for _, char, _ in onsets[k + 1:]:
        if char != "p":
            return _bass_tone(char, chords[bar], root_pitch, lo, hi)
    following = chords[bar + 1] if bar + 1 < len(chords) else chords[bar]
    return _nearest(following[0], root_pitch, lo, hi)


def _passing(scale: list[int], current: int, target: int) -> int:
    """The scale tone a step from ``current`` toward ``target`` (a step up when they are the same):
    a passing tone stays in the key, as the bass idioms that walk between chord tones do."""
    if current not in scale:
        return current
    idx = scale.index(current) + (-1 if target < current else 1)
    return scale[idx] if 0 <= idx < len(scale) else current


def chord_tones(chord: ChordPcs, style: styles.Style, thin: bool, tonic_pc: int | None = None) -> tuple[int, ...]:
    """The pitch classes a comping or pad part voices.

    A triad, with its diatonic seventh where the style voices sevenths (on every chord, or on
    the dominant only); a seventh chord leaves out its fifth, the first tone voicings drop.
    ``thin`` is for comping over a bass line that sounds the root: two tones, the third and the
    seventh of a seventh chord (the guide tones of jazz comping), else root and third (the mode
    still reads). The tonic chord (root ``tonic_pc``) keeps its root and third even then: the
    home chord is stated plainly, so the key is heard through the colour of the others.
    """
    dominant = len(chord) > 3 and (chord[1] - chord[0]) % 12 == 4 and (chord[3] - chord[0]) % 12 == 10
    seventh = len(chord) > 3 and (style.sevenths == "all" or (style.sevenths == "dominant" and dominant))
    if not seventh:
        return chord[:2] if thin else chord[:3]
    if not thin:
        return chord[0], chord[1], chord[3]
    return chord[:2] if chord[0] == tonic_pc else (chord[1], chord[3])


KEYBOARD_PROGRAMS = range(0, 24)  # GM pianos, electric pianos, mallets, organs, accordions: they comp in full chords


def keyboard_voicing(chord: ChordPcs, tones: tuple[int, ...]) -> tuple[int, ...]:
    """A keyboard's comping chord, whole: a seventh chord in its four tones (root, third, fifth,
    seventh) where the style voices its seventh (``tones``, from chord_tones, holds it), else the
    triad. Only chord tones, so a progression the prompt names is played as named."""
    if len(chord) > 3 and chord[3] in tones:
        return chord[:4]
    return chord[:3]


def _chords(w: _Writer, part: Part, style: styles.Style, grid: Grid, meter: Meter,
            chords: list[ChordPcs], sustain: bool, thin: bool = False) -> None:
    """Comping or a sustained pad on the bar's chord (chord_tones says which tones; a keyboard
    comps in full chords, keyboard_voicing)."""
    keyboard = part.program in KEYBOARD_PROGRAMS and not part.is_drum and not sustain
    lo, hi = _register(part, style)
    if part.role == "keys":  # the left hand of a keyboard part
        lo, hi = max(part.low, 48), max(part.low + 12, 64)
    centre = (lo + hi) // 2
    pattern = "x" + "-" * (grid.steps - 1) if sustain else (_pattern(style, "comp", grid, meter) or "x")
    for bar, chord in enumerate(chords):
        tones = chord_tones(chord, style, thin and not keyboard, w.spec.key.tonic_pc)
        if keyboard:
            tones = keyboard_voicing(chord, tones)
        voicing = sorted({_nearest(pc, centre, lo, hi) for pc in tones})
        for step, char, length in _onsets(pattern):
            held = length if sustain else STAB_STEPS if char == "s" else max(1, length - 0.5)
            for pitch in voicing:
                w.add(bar, step, held, pitch, PATTERN_VELOCITY.get(char, 90) - 14)


def _melody(w: _Writer, part: Part, grid: Grid, chords: list[ChordPcs], rng: np.random.Generator) -> None:
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
    for bar, chord in enumerate(chords):
        onsets = motifs[bar % motif_bars]
        for k, step in enumerate(onsets):
            length = (onsets[k + 1] if k + 1 < len(onsets) else grid.steps) - step
            if step in grid.group_starts:  # strong beats land on chord tones
                pitch = _nearest(chord[int(rng.integers(0, 3))], pitch, lo, hi)  # the triad's tones
            else:
                idx = scale.index(pitch) if pitch in scale else len(scale) // 2
                idx = int(np.clip(idx + int(rng.choice([-2, -1, -1, 1, 1, 2])), 0, len(scale) - 1))
                pitch = scale[idx]
            if bar == len(chords) - 1 and k == len(onsets) - 1:
                pitch = _nearest(tonic_pc, pitch, lo, hi)  # the phrase closes on the tonic
            w.add(bar, step, max(1, length - 0.25), pitch, 86 + int(rng.integers(-8, 9)))


# Velocity of model-written voices before the dynamics arc: the melody above the others,
# beat-group starts a little louder than the rest; the prompt's energy moves the level (the corpus
# model writes no dynamics of its own), by this share per unit of energy around the middle (0.5).
MODEL_VELOCITY = {"top": 88, "inner": 72, "accent": 8}
MODEL_VELOCITY_PER_ENERGY = 0.5
MIN_VOICE_SPAN = 12
LOW_INSTRUMENT_MAX_LOW = 40  # a melody instrument reaching down to E2 or lower can take the bass voice


@dataclass(frozen=True)
class VoicePlan:
    """Which model voice slots each part plays, and each slot's pitch range."""

    slots_of: dict[int, tuple[int, ...]]  # part index -> slots it plays
    ranges: dict[int, tuple[int, int]]    # slot -> (low, high), every slot the model writes


def _slot_range(slot: int, part: Part | None) -> tuple[int, int]:
    """The slot's register narrowed to the part's playable range (at least an octave)."""
    lo, hi = SLOT_REGISTER[slot]
    if part is None:
        return lo, hi
    lo, hi = max(lo, part.low), min(hi, part.high)
    if hi - lo < MIN_VOICE_SPAN:  # the register misses the instrument: an octave and more around its middle
        mid = (max(part.low, SLOT_REGISTER[slot][0]) + min(part.high, SLOT_REGISTER[slot][1])) // 2
        mid = min(max(mid, part.low + 9), part.high - 9)
        lo, hi = max(part.low, mid - 9), min(part.high, mid + 9)
    return lo, hi


def plan_voices(parts: list[Part]) -> VoicePlan:
    """Give the model's four voices to parts: melody -> top voice; keys (or else pad) -> the rest.

    Further melody parts take the inner voices, or the bass voice if the instrument reaches low
    (a cello in a string quartet). With no melody part, a keys or pad part
    plays all four voices. When no part plays a model voice (say bass, guitar comping and
    drums), the model still writes all four, unheard, so its harmony drives the arranger;
    otherwise only the voices some part plays are written. Writing more than the melody asks
    the model in the harmony style (model.toml): only the chorales taught it inner voices.
    """
    melody = [i for i, p in enumerate(parts) if p.role == "melody" and not p.is_drum]
    harmony = [i for i, p in enumerate(parts) if p.role == "keys"] or [i for i, p in enumerate(parts)
                                                                      if p.role == "pad"]
    slots_of: dict[int, tuple[int, ...]] = {}
    free = list(range(SLOTS))
    for order, index in enumerate(melody):
        low_instrument = parts[index].low <= LOW_INSTRUMENT_MAX_LOW
        if order == 0:
            slot = 0
        elif low_instrument and 3 in free:
            slot = 3  # a cello or bassoon among the melody parts takes the bass voice
        else:
            slot = next((s for s in (1, 2) if s in free), None)
        if slot is None:
            continue  # more melody parts than voices: the arranger writes the rest
        slots_of[index] = (slot,)
        free.remove(slot)
    if harmony and free:
        slots_of[harmony[0]] = tuple(free)
    owner = {slot: parts[i] for i, slots in slots_of.items() for slot in slots}
    written = sorted(owner) or list(range(SLOTS))  # nobody listens: four voices for the harmony alone
    return VoicePlan(slots_of, {slot: _slot_range(slot, owner.get(slot)) for slot in written})


# When no part plays the model's voices, they only choose the arranger's chords: a softer pull
# to the tonic leaves the harmony room to move (different seeds, different progressions).
UNHEARD_KEY_PULL = 0.6


# Energy reaches the notes: a calm prompt asks the model for a sparser line, an intense one for a busier one
# (the Density_ condition, 0-3); a tense mood lets it use chromatic passing notes (dissonance).
LOW_ENERGY, HIGH_ENERGY = 0.3, 0.75
CHROMATIC_MOODS = ("tense",)


def energy_density(style_density: int, spec: MusicSpec) -> int:
    """The style's model density moved one step down for a low energy, one up for a high one (0-3)."""
    shift = -1 if spec.energy < LOW_ENERGY else 1 if spec.energy > HIGH_ENERGY else 0
    return int(np.clip(style_density + shift, 0, 3))


def model_request(spec: MusicSpec, plan: VoicePlan, harmony: list[Chord] | None = None,
                  clip_form: form.Form | None = None):
    """What the model is asked for a spec: its style token, density, chromatic allowance, voices,
    the harmonic plan its strong beats lean to (``harmony``, one chord per bar), and from the form its
    melody's phrase ends (a long note), returning bars (an earlier bar's rhythm) and contrasting bars (not
    the rhythm of the bar before)."""
    from engine.model.generator import Request, harmony_style, style_settings

    settings = style_settings(spec.style)
    inner = any(slot != 0 for slot in plan.ranges)
    return Request(style=harmony_style() if inner else settings["model_style"], key=spec.key,
                   meter=spec.meter, tempo_bpm=spec.tempo_bpm, density=energy_density(int(settings["density"]), spec),
                   bars=spec.bars, voices=dict(plan.ranges), seed=spec.seed,
                   chromatic=bool(settings["chromatic"]) or spec.mood in CHROMATIC_MOODS,
                   key_pull=1.0 if plan.slots_of else UNHEARD_KEY_PULL,
                   chords=tuple(chord.pcs for chord in harmony or ()),
                   # Only the model plays: its rests are silence. A style may keep its melody going over
                   # the arranger's parts too (ragtime's right hand over the stride).
                   fill_rests=len(plan.slots_of) == len(spec.parts) or bool(settings.get("fill_rests", False)),
                   syncopation=float(settings.get("syncopation", 0.0)), chords_strict=bool(spec.chords),
                   phrase_ends=clip_form.cadences if clip_form else (),
                   contrasts=clip_form.contrasts if clip_form else (),
                   returns=clip_form.returns if clip_form else ())


def harmonic_plan(spec: MusicSpec, style: styles.Style) -> list[Chord]:
    """One chord per bar: the form's chords (engine/form.py) from the style's progressions.

    Outside loop mode the clip opens on I, phrases end on V before the next, and it closes V-I;
    a loop genre (parts.toml ``loop``) cycles its progression as written.
    """
    loop = learned_parts.settings(style.name).loop
    return form.plan(spec.bars, spec.key, list(style.progressions), spec.seed, loop).chords


def frame_harmony(chords: list[Chord], spec: MusicSpec) -> list[Chord]:
    """The detected chords with the key stated: I in the first bar, V-I in the last two.

    The model's voices already open on the tonic chord and close V-I (engine/model/decode.py), but
    a bar's detected chord can still read otherwise (a melody alone on the fifth); the
    arranger's bass and comping make the frame explicit, as real music does, so the key is
    heard from the first downbeat and confirmed by the cadence.
    """
    triads = diatonic_triads(spec.key)
    framed = list(chords)
    if framed:
        framed[0] = triads[0]
        framed[-1] = triads[0]
    if len(framed) >= 3 and framed[-2].degree != 5:
        # the dominant as decoding closes on it: major in minor (harmonic minor), the scale's own in other modes
        framed[-2] = triads[7] if spec.key.mode == "minor" else triads[4]
    return framed


def _write_voices(w: _Writer, grid: Grid, notes: list[GridNote], slots: tuple[int, ...],
                  legato: bool = False) -> None:
    """Put the model's notes of ``slots`` into a part, through the writer (swing, arc).

    ``legato`` (a pad) holds each note until its voice moves on (see ``held``).
    """
    top = min(slots)
    level = 1.0 + MODEL_VELOCITY_PER_ENERGY * (w.spec.energy - 0.5)  # a lament softer, an upbeat tune louder
    mine = [note for note in notes if note.slot in slots]
    if legato:
        mine = held(mine, grid.bar_ticks, w.end)
    written: set[tuple[int, int]] = set()
    for note in mine:
        if (note.time, note.pitch) in written:
            continue  # two voices of one part on the same key at once: play it once
        written.add((note.time, note.pitch))
        bar, offset = divmod(note.time, grid.bar_ticks)
        step = offset // grid.step_ticks
        accent = MODEL_VELOCITY["accent"] if step in grid.group_starts else 0
        velocity = (MODEL_VELOCITY["top"] if note.slot == top else MODEL_VELOCITY["inner"]) + accent
        w.add(bar, step, note.duration / grid.step_ticks, note.pitch, round(velocity * level))


def held(notes: list[GridNote], max_gap: int, end: int) -> list[GridNote]:
    """Each note held until the next note of its voice (a rest up to ``max_gap`` ticks is filled), as a pad plays.

    A voice's last note rings to ``end`` if that is within ``max_gap``. A note never runs into a later
    note of the same pitch in the part, so no key is struck while it is still held.
    """
    by_slot: dict[int, list[GridNote]] = {}
    for note in sorted(notes, key=lambda n: (n.time, n.pitch)):
        by_slot.setdefault(note.slot, []).append(note)
    onsets_of_pitch: dict[int, list[int]] = {}
    for note in notes:
        onsets_of_pitch.setdefault(note.pitch, []).append(note.time)
    out = []
    for voice in by_slot.values():
        for k, note in enumerate(voice):
            until = voice[k + 1].time if k + 1 < len(voice) else end
            target = until if until - note.end <= max_gap else note.end
            later = [t for t in onsets_of_pitch[note.pitch] if t > note.time]
            if later:
                target = min(target, min(later))
            out.append(replace(note, duration=max(note.duration, target - note.time)))
    return sorted(out, key=lambda n: (n.time, n.slot))


PartDone = Callable[[Score, int], None]  # (the score so far, the index of the track just finished)


def compose(spec: MusicSpec, should_stop: Callable[[], bool] | None = None, on_part: PartDone | None = None) -> Score:
    """A Score for the spec: one named track per part, tempo, meter and key written in.

    The draft is listened to with the key finder used on input clips; a draft heard in another
    key is drawn again from the seed's next stream (model.toml ``key_attempts``), and if none is
    heard in the key the first is kept. The same spec and seed always give the same Score.

    ``should_stop`` is polled at every bar the model writes and between parts; when it
    returns true the work ends with Cancelled. ``on_part`` is called with the score so far each time a
    track is finished (the engine renders it ahead meanwhile); a draft drawn again calls it anew.

    Raises CheckpointMissing (a FileNotFoundError naming the path) when the model's
    checkpoint is absent: there is no silent fallback to the rule-based melody.
    """
    return compose_with_provenance(spec, should_stop, on_part)[0]


def compose_with_provenance(spec: MusicSpec, should_stop: Callable[[], bool] | None = None,
                            on_part: PartDone | None = None) -> tuple[Score, Provenance]:
    """``compose``, and which notes of the returned draft a learned model wrote (engine/compose/learned.py)."""
    from engine.model.generator import key_attempts

    first = None
    for attempt in range(key_attempts()):
        drawn = spec if attempt == 0 else replace(spec, seed=draft_seed(spec.seed, attempt))
        provenance = Provenance()
        score = _draft(drawn, should_stop, provenance, on_part)
        if heard_in_key(score, spec.key):
            return score, provenance
        first = first or (score, provenance)
    return first


def draft_seed(seed: int, attempt: int) -> int:
    """The seed of a later draft: its own stream, derived from the spec's seed and the attempt."""
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


def heard_in_key(score: Score, key: Key) -> bool:
    """True when the pitched notes read (Krumhansl-Schmuckler) as the key's tonic with its third's quality.

    A mode is heard by its tonic and third: D dorian counts as heard when the notes read as D minor.
    A clip with no pitched notes (drums alone) has no key to miss.
    """
    from engine.model.generator import third_quality

    notes = [GridNote(n.time, n.duration, n.pitch) for t in score.tracks if not t.is_drum for n in t.notes]
    if not notes:
        return True
    found, _ = find_key(notes)
    return found.tonic_pc == key.tonic_pc and found.mode == third_quality(key)


def _draft(spec: MusicSpec, should_stop: Callable[[], bool] | None,
           provenance: Provenance | None = None, on_part: PartDone | None = None) -> Score:
    """One draft of the clip: the form's chords, then every part (module docstring)."""
    style = styles.get(spec.style)
    settings = learned_parts.settings(spec.style)
    grid = Grid.of(spec.meter)
    pitched = [p for p in spec.parts if not p.is_drum]
    provenance = provenance if provenance is not None else Provenance()
    clip_form = form.plan(spec.bars, spec.key, list(style.progressions), spec.seed, settings.loop)
    harmony = clip_form.chords
    # The corpus model writes only voices some part plays, and only in the styles it knows (parts.toml).
    plan = plan_voices(spec.parts) if settings.corpus else VoicePlan({}, {})
    notes: list[GridNote] = []
    given = bar_chords(spec)  # a progression the user asked for (engine/music/chords.py)
    if given:  # the asked progression, exactly: no frame, no cadence, nothing detected
        clip_form = replace(clip_form, bars=tuple(replace(bar, chord=chord)
                                                  for bar, chord in zip(clip_form.bars, given, strict=True)))
        harmony = given
    if pitched and plan.slots_of:
        from engine.model.generator import load

        generator = load()
        try:
            generator.vocab.time_signature(spec.meter)
        except KeyError as error:
            raise SpecError("meter", str(error.args[0])) from None
        notes = generator.generate(model_request(spec, plan, harmony, clip_form), should_stop=should_stop)
        if not given:
            detected = chords_per_bar([GridNote(n.time, n.duration, n.pitch) for n in notes], spec.key,
                                      spec.meter, spec.bars, TICKS_PER_QUARTER, plan=harmony)
            harmony = frame_harmony(detected, spec) if not settings.loop else detected
            clip_form = replace(clip_form, bars=tuple(replace(bar, chord=chord)
                                                      for bar, chord in zip(clip_form.bars, harmony, strict=True)))
    if given:  # the asked progression's sevenths voiced
        chords = [chord.tones for chord in given]
        style = replace(style, sevenths="all")
    else:
        chords = [chord.pcs + (seventh_pc(chord, spec.key),) for chord in harmony]

    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=spec.tempo_bpm))
    score.time_signatures.append(TimeSignature(0, spec.meter.numerator, spec.meter.denominator))
    score.key_signatures.append(KeySignature(0, spec.key.fifths(), 0 if spec.key.mode == "major" else 1))
    for index, part in enumerate(spec.parts):
        if should_stop and should_stop():
            raise Cancelled(f"stopped after {len(score.tracks)} of {len(spec.parts)} parts")
        track = Track(name=part.name, program=part.program, is_drum=part.is_drum)
        writer = _Writer(spec, grid, track)
        part_rng = np.random.default_rng([spec.seed, len(score.tracks)])
        bar_kinds: list[str] = []
        if index in plan.slots_of:
            _write_voices(writer, grid, notes, plan.slots_of[index], legato=part.role == "pad")
            kind = "learned"
        elif part.role == "drums" and instruments.percussion(part.instrument):
            bar_kinds = _percussion(writer, instruments.percussion(part.instrument), grid, spec.meter,
                                    genre=style.drum_genre,
                                    seed=drum_seed(spec.seed, PERCUSSION_SALT + len(score.tracks)),
                                    clip_form=clip_form, timeline=style.drums.timeline)
            kind = None  # counted per bar: the idiom's bars and the model's fills
        elif part.role == "drums" or part.is_drum:
            _drums(writer, style, drum_seed(spec.seed, len(score.tracks)), clip_form)
            kind = "drums" if style.drums.kit else "rules"  # a style's ensemble strokes are placed by rule
        elif part.role in learned_parts.ROLE_OF and not _stride(style, part):
            bar_kinds = _learned_part(writer, part, index, style, settings, grid, spec, clip_form)
            kind = None  # counted per bar: the idiom's bars and the model's fills
        elif part.role == "bass":
            breaks = frozenset(bar.index for bar in clip_form.bars if bar.phrase_end)
            _bass(writer, part, style, grid, spec.meter, chords, part_rng, breaks)
            kind = "rules"
        else:
            _melody(writer, part, grid, chords, part_rng)
            kind = "rules"
        if kind == "learned" and not part.is_drum:  # the corpus model's voices (a rule part keeps its accents)
            play_track(track, part, grid, spec, seed=int(part_rng.integers(2**31)))
        rests = arc_rests(spec.arc, spec.bars, part)
        if rests:
            kept = [n for n in track.notes if n.time // grid.bar_ticks not in rests]
            track.notes.clear()
            track.notes.extend(kept)
        if not part.is_drum and not instruments.percussion(part.instrument):
            shape_part(track, part, spec, style, grid.bar_ticks)
        track.notes.sort(key=lambda n: (n.time, n.pitch))
        add_expression(track, part, spec.arc, spec.bars, grid.bar_ticks)
        if kind is not None:
            provenance.add(part.name, kind, len(track.notes))
        else:  # the notes the arc kept, by the kind of their bar
            for bar_kind, count in Counter(bar_kinds[min(len(bar_kinds) - 1, n.time // grid.bar_ticks)]
                                           for n in track.notes).items():
                provenance.add(part.name, bar_kind, count)
        score.tracks.append(track)
        if on_part is not None:
            on_part(score, len(score.tracks) - 1)
    return score


def play_track(track: Track, part: Part, grid: Grid, spec: MusicSpec, seed: int) -> None:
    """A written part's notes as the performance model plays them (engine/compose/learned.py ``play``),
    velocity and timing: for the corpus model's voices, which the part model did not write; ``quantize``
    keeps the onsets where they are."""
    from engine.model import perform

    notes = sorted(track.notes, key=lambda n: (n.time, n.pitch))
    if not notes:
        return
    played = [perform.PlayedNote(n.time // grid.step_ticks, n.time // grid.bar_ticks,
                                 (n.time % grid.bar_ticks) // grid.step_ticks, n.duration / grid.step_ticks,
                                 n.pitch, n.velocity) for n in notes]
    velocities, offsets, _ = perform.load().play(played, learned_parts.ROLE_OF.get(part.role, "comp"), seed)
    track.notes.clear()
    for n, p, velocity, offset in zip(notes, played, velocities, offsets, strict=True):
        shift = 0 if spec.quantize else max(-p.step * grid.step_ticks, round(offset * grid.step_ticks))
        track.notes.append(Note(n.time + shift, n.duration, n.pitch, velocity))


def _stride(style: styles.Style, part: Part) -> bool:
    """A bass part whose style plays a stride (bass note, chord): the rule arranger keeps that idiom."""
    return part.role == "bass" and "c" in style.patterns.get("bass", "")


def _style_rhythm(style: styles.Style, name: str, grid: Grid, meter: Meter) -> tuple[tuple[int, int], ...]:
    """A style pattern's onsets as (step, length in steps): the idiom a learned part keeps."""
    if name == "bass" and style.bass_idiom == "walking":
        per_beat = max(1, (TICKS_PER_QUARTER * 4 // meter.denominator) // grid.step_ticks)
        return tuple((s, per_beat) for s in range(0, grid.steps, per_beat))
    pattern = _pattern(style, name, grid, meter) or "x"
    return tuple((step, STAB_STEPS if char == "s" else max(1, length - (1 if length > 2 else 0)))
                 for step, char, length in _onsets(pattern))


def part_model_role(spec: MusicSpec, part: Part) -> str | None:
    """The part model's role for ``part`` ("melody", "bass" or "comp") when compose gives the part to the
    part model in the spec's style, else None (drums, percussion, a stride bass, the corpus model's voices)."""
    if part.is_drum or part.role not in learned_parts.ROLE_OF or instruments.percussion(part.instrument):
        return None
    style = styles.get(spec.style)
    if _stride(style, part):
        return None
    if learned_parts.settings(spec.style).corpus and spec.parts.index(part) in plan_voices(spec.parts).slots_of:
        return None
    return learned_parts.ROLE_OF[part.role]


# The line a corpus-model voice is: the top voice the tune, the lowest the bass, the inner ones harmony.
_SLOT_LINE = {0: "melody", 1: "comp", 2: "comp", 3: "bass"}


def line_role(spec: MusicSpec, part: Part) -> str | None:
    """The line ``part`` plays in the clip ("melody", "bass" or "comp"), None for drums and percussion.

    Mostly its role's; a melody part given one of the corpus model's lower voices (the cello of a
    string quartet takes the bass voice, a second violin an inner one) plays that line instead."""
    if part.is_drum or part.role not in learned_parts.ROLE_OF or instruments.percussion(part.instrument):
        return None
    if learned_parts.settings(spec.style).corpus:
        slots = plan_voices(spec.parts).slots_of.get(spec.parts.index(part))
        if slots and len(slots) == 1:
            return _SLOT_LINE[slots[0]]
    return learned_parts.ROLE_OF[part.role]


def learned_bars(part: Part, index: int, spec: MusicSpec, clip_form: form.Form, *,
                 given: list[list[learned_parts.BarNote]] | None = None, rewrite: set[int] | None = None,
                 keep_rhythm: bool = False, seed: int | None = None,
                 ) -> tuple[list[list[learned_parts.BarNote]], list[str]]:
    """A melody, bass, comping, keys or pad part's bars from the part model over the form's chords, and
    how each was written (engine/compose/learned.py write_part; ``given``/``rewrite``/``keep_rhythm``:
    co-creation rewrites some bars of a part as it stands)."""
    from engine.model import parts as partmodel
    from engine.model.generator import third_quality

    style = styles.get(spec.style)
    settings = learned_parts.settings(spec.style)
    grid = Grid.of(spec.meter)
    role = learned_parts.ROLE_OF[part.role]
    lo, hi = _register(part, style)
    rhythm = None
    if role == "bass" and settings.bass_rhythm == "style":
        rhythm = _style_rhythm(style, "bass", grid, spec.meter)
    elif role == "comp" and part.role != "pad" and settings.comp_rhythm == "style":
        rhythm = _style_rhythm(style, "comp", grid, spec.meter)
    colour = None
    if role == "comp":  # the style's sevenths (styles.toml `sevenths`), or an asked chord's, colour the comping
        colour = [frozenset(bar.chord.tones) - set(bar.chord.pcs) if isinstance(bar.chord, ChordSymbol) else
                  frozenset(chord_tones(bar.chord.pcs + (seventh_pc(bar.chord, spec.key),), style, False,
                                        spec.key.tonic_pc)) - set(bar.chord.pcs) for bar in clip_form.bars]
    if seed is None:
        seed = int(np.random.SeedSequence([spec.seed, index]).generate_state(1)[0])
    bars, kinds = learned_parts.write_part(
        partmodel.load(), role=role, form=clip_form, key=spec.key, mode=third_quality(spec.key),
        beats=round(spec.meter.quarters_per_bar), steps=grid.steps, group_starts=grid.group_starts,
        low=lo, high=hi, energy=spec.energy, seed=seed,
        style_rhythm=rhythm, legato=part.role == "pad", colour=colour,
        moving=role == "bass" and style.bass_idiom == "walking", given=given, rewrite=rewrite,
        keep_rhythm=keep_rhythm,
        half_bar_fill=part.role in learned_parts.HALF_BAR_FILLS and sum(not p.is_drum for p in spec.parts) > 1)
    if role == "comp" and part.role != "pad" and part.program < 8:  # a keyboard (GM pianos, e-pianos)
        tones = [frozenset(fb.chord.pcs) | (colour[i] if colour else frozenset())
                 for i, fb in enumerate(clip_form.bars)]
        bars = [notes if kinds[i] == "kept" else learned_parts.full_voicing(notes, tones[i], lo, hi)
                for i, notes in enumerate(bars)]
    bars = learned_parts.play(bars, kinds, role, steps=grid.steps, seed=seed, quantize=spec.quantize,
                              legato=part.role == "pad")
    return bars, kinds


def _learned_part(w: _Writer, part: Part, index: int, style: styles.Style, settings: learned_parts.PartSettings,
                  grid: Grid, spec: MusicSpec, clip_form: form.Form) -> list[str]:
    """A melody, bass, comping, keys or pad part from the part model; returns each bar's provenance kind."""
    bars, kinds = learned_bars(part, index, spec, clip_form)
    for bar, notes in enumerate(bars):
        for note in notes:
            w.add(bar, note.step, note.length, note.pitch, note.velocity, note.offset)
    return kinds


EARLY_READ = 6  # a note up to 1/6 step before a step is read as on it (perform.OFFSETS reach 0.15 steps)


def part_bars(notes, spec: MusicSpec, bars: int, offset: int = 0) -> list[list[learned_parts.BarNote]]:
    """A part's notes (symusic Notes, times from ``offset``) as ``bars`` bars of BarNotes on the clip's grid:
    what the part model reads as context. A swung off-beat is read back on its straight step, a note
    played a little early (the performance model's timing) on the step it was pushed from."""
    grid = Grid.of(spec.meter)
    early = grid.step_ticks // EARLY_READ
    out: list[list[learned_parts.BarNote]] = [[] for _ in range(bars)]
    for n in notes:
        time = n.time - offset
        bar, within = divmod(time, grid.bar_ticks)
        if 0 <= bar < bars:
            out[bar].append(learned_parts.BarNote(min(grid.steps - 1, int((within + early) // grid.step_ticks)),
                                                  max(1, round(n.duration / grid.step_ticks)), int(n.pitch),
                                                  int(n.velocity)))
    return out


def write_bars(track: Track, spec: MusicSpec, bars: list[list[learned_parts.BarNote]], only: set[int] | None = None,
               offset_bars: int = 0) -> None:
    """Append bars of BarNotes to ``track`` (bar ``b`` placed at bar ``b + offset_bars`` of ``spec``), as
    compose writes them (swing, the dynamics arc); ``only``: just these bars."""
    writer = _Writer(spec, Grid.of(spec.meter), track)
    for bar, notes in enumerate(bars):
        if only is None or bar in only:
            for note in notes:
                writer.add(bar + offset_bars, note.step, note.length, note.pitch, note.velocity, note.offset)


def chord_of(pcs: ChordPcs, key: Key) -> Chord:
    """A detected chord's pitch classes (root, third, fifth...) as a Chord of the key."""
    root = pcs[0]
    third = (pcs[1] - root) % 12 if len(pcs) > 1 else 4
    fifth = (pcs[2] - root) % 12 if len(pcs) > 2 else 7
    quality = "dim" if (third, fifth) == (3, 6) else "m" if third == 3 else ""
    scale = list(key.scale_pcs())
    return Chord(scale.index(root) + 1 if root in scale else 0, root, quality)


def clip_scale(spec: MusicSpec, style: styles.Style) -> tuple[int, ...] | None:
    """The scale every pitched note keeps to, as steps above the tonic: one the prompt names
    ("pentatonic", phrases.toml [scales]), else the style's own (gamelan's pelog), else None (the key's)."""
    from engine.model.generator import third_quality

    asked = phrases.asked_scale(spec.prompt, third_quality(spec.key))
    return asked[1] if asked else (style.scale or None)


# Mood and articulation words reach the notes (moods.toml `register`, `articulation`; phrases.toml
# [articulation]): a tune or chord part moves by whole octaves only where every note stays in the
# instrument's range and its middle stays within these pitches; a held note reaches at most a bar on.
REGISTER_MEDIAN_BOUNDS = (50, 84)  # above the pitch a listener (and the eval) hears as a bass line
SHAPED_ROLES = ("melody", "chords", "keys", "pad")


def shape_part(track: Track, part: Part, spec: MusicSpec, style: styles.Style, bar_ticks: int) -> None:
    """A pitched part's notes after writing: kept to the clip's scale (clip_scale), moved to the mood's
    register, held or shortened by the asked (or the mood's) articulation."""
    scale = clip_scale(spec, style)
    if scale:
        keep_to_scale(track, spec.key.tonic_pc, scale)
    mood = phrases.mood_entry(spec.mood)
    sit_in_register(track, part, style)
    if part.role in SHAPED_ROLES:
        move_register(track, part, int(mood.get("register", 0)))
    if part.role in HELD_WHEN_QUIET_ROLES:
        hold_quiet_bars(track, arc_curve(spec.arc, spec.bars), bar_ticks)
    articulation = phrases.asked_articulation(spec.prompt) or mood.get("articulation") or None
    if articulation == "legato":
        hold_legato(track, bar_ticks)
    elif articulation == "staccato" and part.program not in SUSTAINED_PROGRAMS | {46}:
        shorten(track, phrases.staccato_length())
    elif articulation == "arpeggio" and part.role in CHORD_ROLES:
        arpeggiate(track, max(1, round(phrases.arpeggio_step() * TICKS_PER_QUARTER)))


CHORD_ROLES = ("chords", "keys", "pad")  # the parts an asked arpeggio breaks up
HELD_WHEN_QUIET_ROLES = ("chords", "keys")  # comping that sustains where the arc is quiet (a pad always holds)
QUIET_ARC_BELOW = 0.65  # an arc's scale (arc_curve) under which a bar counts as quiet
HELD_CHORD_TONES = 4    # a held half bar keeps its most played pitch classes, at most this many


def hold_quiet_bars(track: Track, arc: np.ndarray, bar_ticks: int) -> None:
    """Where the dynamics arc is quiet (the start of a crescendo, the end of a fade) a comping part
    sustains, as an orchestra's quiet passages do: each half bar's chord, from the pitches it played
    there, struck once and held, in place of the busy rhythm it keeps for the louder bars."""
    quiet = {bar for bar, scale in enumerate(arc) if scale < QUIET_ARC_BELOW}
    if not quiet or not track.notes:
        return
    make = type(track.notes[0])
    half = bar_ticks // 2
    kept = [n for n in track.notes if n.time // bar_ticks not in quiet]
    spans: dict[int, list] = {}
    for n in track.notes:
        if n.time // bar_ticks in quiet:
            spans.setdefault(n.time // half, []).append(n)
    for span, notes in sorted(spans.items()):
        counts = Counter(n.pitch % 12 for n in notes)
        tones = {pc for pc, _ in counts.most_common(HELD_CHORD_TONES)}
        start, end = min(n.time for n in notes), (span + 1) * half
        for pitch in sorted({n.pitch for n in notes if n.pitch % 12 in tones}):
            velocity = max(n.velocity for n in notes if n.pitch == pitch)
            kept.append(make(start, end - start, pitch, velocity))
    track.notes.clear()
    track.notes.extend(sorted(kept, key=lambda n: (n.time, n.pitch)))


def arpeggiate(track: Track, step: int) -> None:
    """The part as an arpeggiator plays it: on every ``step`` where notes sound, one of them, lowest
    up and round again, starting from the lowest whenever the sounding chord changes."""
    notes = sorted(track.notes, key=lambda n: n.time)
    if not notes:
        return
    make = type(notes[0])
    out, active, chord, k, nxt = [], [], (), 0, 0
    end = max(n.time + n.duration for n in notes)
    for t in range((notes[0].time // step) * step, end, step):
        while nxt < len(notes) and notes[nxt].time <= t:
            active.append(notes[nxt])
            nxt += 1
        active = [n for n in active if n.time + n.duration > t]
        sounding = tuple(sorted({n.pitch for n in active}))
        if not sounding:
            continue
        k = 0 if sounding != chord else k + 1
        chord = sounding
        out.append(make(t, step, sounding[k % len(sounding)], max(n.velocity for n in active)))
    track.notes.clear()
    track.notes.extend(out)


def sit_in_register(track: Track, part: Part, style: styles.Style | None = None) -> None:
    """A tune written above its instrument's singing register (the corpus model's top line given to a
    cello: C4-Eb5 for a lament) moves down an octave into it (``_register``) when that brings its median
    nearer the register's middle and the notes stay in range (``move_register``)."""
    if part.role != "melody" or not track.notes:
        return
    lo, hi = _register(part, style)
    pitches = sorted(n.pitch for n in track.notes)
    median = pitches[len(pitches) // 2]
    if abs(median - 12 - (lo + hi) / 2) < abs(median - (lo + hi) / 2):
        move_register(track, part, -12)


def move_register(track: Track, part: Part, shift: int) -> None:
    """Move every note by ``shift`` semitones (whole octaves) when all stay in the part's range and the
    part's median pitch stays within REGISTER_MEDIAN_BOUNDS; else leave it."""
    if not shift or not track.notes:
        return
    pitches = sorted(n.pitch + shift for n in track.notes)
    median = pitches[len(pitches) // 2]
    if pitches[0] < part.low or pitches[-1] > part.high or not (
            REGISTER_MEDIAN_BOUNDS[0] <= median <= REGISTER_MEDIAN_BOUNDS[1]):
        return
    for note in track.notes:
        note.pitch += shift


def hold_legato(track: Track, max_gap: int) -> None:
    """Hold each note until the part's next onset (not past a bar's gap, never into the same key struck again)."""
    onsets = sorted({n.time for n in track.notes})
    by_pitch: dict[int, list[int]] = {}
    for n in track.notes:
        by_pitch.setdefault(n.pitch, []).append(n.time)
    for note in track.notes:
        later = [t for t in onsets if t > note.time]
        if not later or later[0] - note.end > max_gap:
            continue
        target = later[0]
        again = [t for t in by_pitch[note.pitch] if t > note.time]
        if again:
            target = min(target, again[0])
        note.duration = max(note.duration, target - note.time)


def shorten(track: Track, share: float) -> None:
    """Staccato: each note keeps ``share`` of its length (at least one tick)."""
    for note in track.notes:
        note.duration = max(1, int(note.duration * share))


def keep_to_scale(track: Track, tonic_pc: int, scale: tuple[int, ...]) -> None:
    """Move every note of ``track`` to the nearest pitch of ``scale`` (semitones above the tonic; a
    tie goes down): a style's own scale (gamelan's pelog) over the key's. Notes that then strike the
    same key at once are played once."""
    allowed = {(tonic_pc + step) % 12 for step in scale}
    kept, seen = [], set()
    for note in track.notes:
        pitch = min((p for p in range(note.pitch - 6, note.pitch + 7) if p % 12 in allowed),
                    key=lambda p: (abs(p - note.pitch), p))
        if (note.time, pitch) not in seen:
            seen.add((note.time, pitch))
            kept.append(Note(note.time, note.duration, pitch, note.velocity))
    track.notes.clear()
    track.notes.extend(kept)


def arrange_part(spec: MusicSpec, part: Part, chords: list[ChordPcs], seed: int) -> Track:
    """One part written over given chords (one per bar of the spec), as compose would write it: the part
    model for the parts it voices (``part_model_role``), the drum model for a kit, the style arranger
    for the rest (percussion, a stride bass, a corpus style's melody).

    Co-creation uses it to add or rewrite a part against harmony that already exists (a kept
    melody, a user's MIDI), instead of harmony the model would write afresh.
    """
    check_stop(f"writing {part.name}")
    style = styles.get(spec.style)
    grid = Grid.of(spec.meter)
    track = Track(name=part.name, program=part.program, is_drum=part.is_drum)
    writer = _Writer(spec, grid, track)
    rng = np.random.default_rng([seed, 7919])
    if part_model_role(spec, part) is not None:  # as compose writes it: the part model over these chords
        settings = learned_parts.settings(spec.style)
        plan = form.plan(spec.bars, spec.key, list(style.progressions), seed, settings.loop)
        plan = replace(plan, bars=tuple(replace(bar, chord=chord_of(pcs, spec.key))
                                        for bar, pcs in zip(plan.bars, chords, strict=False)))
        bars, _ = learned_bars(part, spec.parts.index(part) if part in spec.parts else 0, spec, plan,
                               seed=int(np.random.SeedSequence([seed, 7919]).generate_state(1)[0]))
        write_bars(track, spec, bars)
    elif (part.role == "drums" or part.is_drum) and instruments.percussion(part.instrument):
        _percussion(writer, instruments.percussion(part.instrument), grid, spec.meter, genre=style.drum_genre,
                    seed=drum_seed(seed, PERCUSSION_SALT), timeline=style.drums.timeline)
    elif part.role == "drums" or part.is_drum:
        loop = learned_parts.settings(spec.style).loop
        _drums(writer, style, drum_seed(seed, 7919),
               form.plan(spec.bars, spec.key, list(style.progressions), spec.seed, loop))
    elif part.role == "bass":
        _bass(writer, part, style, grid, spec.meter, chords, rng)
    elif part.role in ("chords", "pad", "keys"):
        _chords(writer, part, style, grid, spec.meter, chords, sustain=part.role == "pad")
    else:
        _melody(writer, part, grid, chords, rng)
    track.notes.sort(key=lambda n: (n.time, n.pitch))
    add_expression(track, part, spec.arc, spec.bars, grid.bar_ticks)
    return track

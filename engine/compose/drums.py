"""The drum part of a clip, written by the learned drum model (engine/model/drums.py).

The style names its Groove genre as data (`drum_genre` in styles.toml); phrases of
`DRUM_PHRASE_BARS` bars end on a fill bar and the next bar starts a phrase. Hits carry the
model's velocity (times the clip's dynamics arc) and, unless the spec asks for `quantize`,
its micro-timing offset; quantized, every hit sits exactly on its 16th step. A swung spec moves
the off-beat eighths to the triplet position before the drummer's own offset (Groove's swing
genres already play them there; a straight genre asked to swing is moved). Bar count and
meter hold by construction: hits are only written at steps inside each bar of the requested
meter, and a hit pushed early or late never leaves the clip (the first downbeat stays at 0).
"""
from __future__ import annotations

import numpy as np
from symusic import Note, Track

from engine.config import DRUM_NOTE_TICKS, DRUM_PHRASE_BARS, DRUM_TEMPERATURE, TICKS_PER_QUARTER
from engine.music.theory import Meter

STEP_TICKS = TICKS_PER_QUARTER // 4
SWING_TICKS = TICKS_PER_QUARTER // 6  # a straight off-beat eighth to the swung (triplet) one


def phrase_flags(bars: int, phrase_bars: int = DRUM_PHRASE_BARS) -> tuple[list[bool], list[bool]]:
    """(fill, phrase_start) per bar: the last bar of every phrase is a fill; a clip shorter than
    a phrase has no fill (a 1- or 2-bar loop keeps its groove)."""
    fill = [(b + 1) % phrase_bars == 0 for b in range(bars)]
    start = [b % phrase_bars == 0 for b in range(bars)]
    return fill, start


def steps_per_bar(meter: Meter) -> int:
    """16th steps in a bar of this meter (a /32 meter's odd 32nd is not used)."""
    return max(1, round(meter.quarters_per_bar * TICKS_PER_QUARTER) // STEP_TICKS)


KICKS = (35, 36)
FLOOR_KICK_VELOCITY = 110


def write_drums(track: Track, *, meter: Meter, bars: int, tempo: float, genre: str | None, seed: int,
                quantize: bool, swing: bool = False, dynamics: np.ndarray | None = None,
                four_on_the_floor: bool = False) -> int:
    """Append the model's drum hits for the clip to ``track``; return how many were written.

    ``four_on_the_floor`` (a style idiom no Groove drummer teaches: the dance styles' sequenced
    kick) replaces the model's kicks with one exactly on every beat; the rest of the kit stays the
    model's.
    """
    from engine.model.drums import load_default

    generator = load_default()
    bar_ticks = round(meter.quarters_per_bar * TICKS_PER_QUARTER)
    spb = steps_per_bar(meter)
    fill, start = phrase_flags(bars)
    hits = generator.generate([spb] * bars, genre, tempo, fill, start, seed=seed, temperature=DRUM_TEMPERATURE)
    end = bars * bar_ticks
    written = 0
    if four_on_the_floor:
        hits = [hit for hit in hits if hit.pitch not in KICKS]
        beat = meter.beat_ticks()
        for bar in range(bars):
            scale = float(dynamics[bar]) if dynamics is not None else 1.0
            for tick in range(0, bar_ticks, beat):
                velocity = int(np.clip(round(FLOOR_KICK_VELOCITY * scale), 1, 127))
                track.notes.append(Note(bar * bar_ticks + tick, DRUM_NOTE_TICKS, KICKS[1], velocity))
                written += 1
    for hit in hits:
        time = hit.bar * bar_ticks + hit.step * STEP_TICKS
        if swing and hit.step % 4 == 2:  # the off-beat eighth moves to the triplet position, as every part's does
            time += SWING_TICKS
        if not quantize:
            time += round(hit.offset * STEP_TICKS)
        time = min(max(time, 0), end - 1)
        scale = float(dynamics[hit.bar]) if dynamics is not None else 1.0
        velocity = int(np.clip(round(hit.velocity * scale), 1, 127))
        track.notes.append(Note(time, min(DRUM_NOTE_TICKS, end - time), hit.pitch, velocity))
        written += 1
    return written

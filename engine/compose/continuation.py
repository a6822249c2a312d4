"""Continue a clip: the model reads an input clip and writes the bars that follow it.

The input's key and chords are detected (Krumhansl-Schmuckler on its pitch-class histogram,
diatonic triads per bar, engine/music/analysis.py), never assumed from the spec; its meter and
tempo are read from the file. Its pitched tracks become the model's voices (top = melody,
lowest = bass) and its last bars are the model's context. The new bars are decoded under
the same constraints as a fresh clip, in the detected key and each voice's own range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from symusic import KeySignature, Note, Score, Tempo, TimeSignature, Track

from engine.config import BARS_MAX, BARS_MIN, TICKS_PER_QUARTER
from engine.errors import SpecError
from engine.model.tokens import density_level
from engine.music.analysis import Chord, assign_slots, chords_per_bar, read_clip
from engine.music.spec import MusicSpec
from engine.music.theory import Key, Meter

CONTEXT_BARS = 8
RANGE_MARGIN = 2  # semitones a voice may go beyond what the input played


@dataclass(frozen=True)
class Continuation:
    """The new bars (a Score starting at tick 0) and what was detected in the input."""

    score: Score
    key: Key
    key_correlation: float
    chords: list[Chord]  # one per input bar
    meter: Meter
    tempo_bpm: float
    input_bars: int


def _voice_range(pitches: list[int]) -> tuple[int, int]:
    lo, hi = min(pitches) - RANGE_MARGIN, max(pitches) + RANGE_MARGIN
    if hi - lo < 12:
        mid = (lo + hi) // 2
        lo, hi = mid - 6, mid + 6
    return max(21, lo), min(108, hi)


def continue_clip(clip: Score, spec: MusicSpec, bars: int) -> Continuation:
    """``bars`` new bars after ``clip``, in the clip's detected key, its meter and tempo.

    ``spec`` gives the style (hence chromatic allowance and density hint) and the seed.
    Raises SpecError naming ``midi`` when the clip has no pitched notes or an unsupported meter.
    """
    from engine.model.generator import Request, load, style_settings

    if not BARS_MIN <= bars <= BARS_MAX:
        raise SpecError("bars", f"must be {BARS_MIN}-{BARS_MAX}, got {bars}")
    reading = read_clip(clip, TICKS_PER_QUARTER, spec.tempo_bpm, "to continue")
    clip, notes, meter, tempo = reading.clip, reading.notes, reading.meter, reading.tempo_bpm
    key, correlation, bar_ticks, input_bars = reading.key, reading.key_correlation, reading.bar_ticks, reading.bars
    chords = chords_per_bar(notes, key, meter, input_bars, TICKS_PER_QUARTER)

    generator = load()
    vocab = generator.vocab
    try:
        vocab.time_signature(meter)
    except KeyError as error:
        raise SpecError("midi", f"meter {meter}: {error.args[0]}") from None
    pairs = assign_slots(clip)
    slotted = Score(TICKS_PER_QUARTER)
    slotted.time_signatures.append(TimeSignature(0, meter.numerator, meter.denominator))
    first_context_bar = max(0, input_bars - CONTEXT_BARS)
    for track, slot in pairs:
        copy = Track(program=slot)
        for n in track.notes:
            if n.time >= first_context_bar * bar_ticks:
                copy.notes.append(Note(n.time - first_context_bar * bar_ticks, n.duration, n.pitch, n.velocity))
        slotted.tracks.append(copy)
    sequence = vocab.tokenizer.encode(slotted)
    if isinstance(sequence, list):
        sequence = sequence[0]
    context = list(sequence.ids)

    settings = style_settings(spec.style)
    voices = {slot: _voice_range([n.pitch for n in track.notes]) for track, slot in pairs}
    quarters = input_bars * meter.quarters_per_bar
    density = density_level(len(notes) / quarters / len(voices))
    context_bars = input_bars - first_context_bar
    request = Request(style=settings["model_style"], key=key, meter=meter, tempo_bpm=tempo, density=density,
                      bars=bars, voices=voices, chromatic=bool(settings["chromatic"]), seed=spec.seed)
    new_notes = generator.generate(request, context, prefix_bars=context_bars + bars, cadence=False)

    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=tempo))
    score.time_signatures.append(TimeSignature(0, meter.numerator, meter.denominator))
    score.key_signatures.append(KeySignature(0, key.fifths(), 0 if key.mode == "major" else 1))
    for track, slot in pairs:
        velocity = int(np.median([n.velocity for n in track.notes]))
        out = Track(name=track.name, program=track.program, is_drum=False)
        for n in new_notes:
            if n.slot == slot:
                out.notes.append(Note(n.time, n.duration, n.pitch, velocity))
        score.tracks.append(out)
    return Continuation(score, key, correlation, chords, meter, tempo, input_bars)

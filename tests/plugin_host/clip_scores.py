"""Scores made here, note by note, so the expected lengths and onsets are known exactly."""
from __future__ import annotations

from symusic import Note, Score, Tempo, TimeSignature, Track

TPQ = 480


def make_score(tempo: float = 123.0, meter: tuple[int, int] = (4, 4), bars: int = 4) -> Score:
    """Four parts (drums, bass, chords, melody) that play from the first downbeat to the last bar line.

    The drums hit a kick at tick 0, so the first drum onset of a correct render is sample 0.
    """
    numerator, denominator = meter
    beat = TPQ * 4 // denominator
    bar = beat * numerator
    score = Score(TPQ)
    score.tempos.append(Tempo(0, qpm=tempo))
    score.time_signatures.append(TimeSignature(0, numerator, denominator))
    drums = Track(name="drums", program=0, is_drum=True)
    bass = Track(name="bass", program=33)
    chords = Track(name="chords", program=4)
    melody = Track(name="melody", program=80)
    roots = [48, 53, 55, 45]
    for b in range(bars):
        start = b * bar
        root = roots[b % len(roots)]
        for step in range(numerator):
            t = start + step * beat
            drums.notes.append(Note(t, beat // 4, 36 if step % 2 == 0 else 38, 110))
            drums.notes.append(Note(t, beat // 4, 42, 70))
            drums.notes.append(Note(t + beat // 2, beat // 4, 42, 60))
            bass.notes.append(Note(t, beat * 3 // 4, root - 12, 100))
            melody.notes.append(Note(t, beat // 2, root + 24 + (step * 2) % 7, 90))
        for offset in (0, 4, 7):
            chords.notes.append(Note(start, bar, root + 12 + offset, 80))
    score.tracks.extend([drums, bass, chords, melody])
    return score


ROLES = {"drums": "drums", "bass": "bass", "chords": "chords", "melody": "melody"}


def clip_frames(tempo: float, meter: tuple[int, int], bars: int, sample_rate: int) -> int:
    """bars x beats x 60 / tempo, in samples; a beat is a quarter note here (tempo is quarters per minute)."""
    numerator, denominator = meter
    return round(bars * numerator * (4 / denominator) * 60.0 / tempo * sample_rate)

"""Musicality metrics: small hand-worked cases, and agreement with MusPy itself on random clips."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from symusic import Note, Score, TimeSignature, Track

from engine.evaluation import metrics

TPQ = 4  # a small resolution keeps hand-worked cases readable: 4 ticks a beat, 16 a 4/4 bar


def score_of(*tracks: tuple[list[tuple[int, int, int]], bool], tpq: int = TPQ, meter=(4, 4)) -> Score:
    """A Score from (notes as (time, duration, pitch), is_drum) per track."""
    score = Score(tpq)
    score.time_signatures.append(TimeSignature(0, *meter))
    for notes, is_drum in tracks:
        track = Track(is_drum=is_drum)
        for time, duration, pitch in notes:
            track.notes.append(Note(time, duration, pitch, 80))
        score.tracks.append(track)
    return score


def test_pitch_class_entropy_of_one_and_of_twelve_classes() -> None:
    assert metrics.pitch_class_entropy(score_of(([(0, 4, 60), (4, 4, 72)], False))) == 0.0
    chromatic = score_of(([(i * 4, 4, 60 + i) for i in range(12)], False))
    assert metrics.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))


def test_drums_do_not_count_for_pitch_metrics() -> None:
    score = score_of(([(0, 4, 60)], False), ([(0, 1, 36), (4, 1, 38)], True))
    assert metrics.pitch_class_entropy(score) == 0.0
    assert metrics.scale_consistency(score) == 1.0
    assert math.isnan(metrics.pitch_class_entropy(score_of(([(0, 1, 36)], True))))


def test_scale_consistency() -> None:
    c_major = score_of(([(i * 4, 4, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71])], False))
    assert metrics.scale_consistency(c_major) == 1.0
    with_a_sharp = score_of(([(i * 4, 4, p) for i, p in enumerate([60, 62, 64, 66, 68, 70, 61, 63])], False))
    # C# major (C# D# F F# G# A# C) holds six of the eight: C, D#, F#, G#, A#, C#; no scale holds more.
    assert metrics.scale_consistency(with_a_sharp) == pytest.approx(6 / 8)


def test_empty_beat_rate() -> None:
    # A 4-beat note from 0 to 16: ends on beat 4's line, which MusPy counts; beats 0-4 of 5 sound.
    assert metrics.empty_beat_rate(score_of(([(0, 16, 60)], False))) == 0.0
    # Notes on beats 0 and 3 (length 1 tick): song length 13 ticks, 4 beats, beats 1-2 empty.
    assert metrics.empty_beat_rate(score_of(([(0, 1, 60), (12, 1, 60)], False))) == pytest.approx(0.5)


def test_polyphony() -> None:
    # A triad for one beat, then one note for one beat: (3*4 + 1*4) / 8 ticks = 2.
    score = score_of(([(0, 4, 60), (0, 4, 64), (0, 4, 67), (4, 4, 72)], False))
    assert metrics.polyphony(score) == pytest.approx(2.0)
    # The same pitch in two tracks at once sounds once (MusPy's piano roll is binary).
    assert metrics.polyphony(score_of(([(0, 4, 60)], False), ([(0, 4, 60)], False))) == 1.0


def test_groove_consistency() -> None:
    # The same onsets in both bars: no difference.
    same = score_of(([(0, 1, 60), (8, 1, 60), (16, 1, 60), (24, 1, 60)], False))
    assert metrics.groove_consistency(same, 16) == pytest.approx(1 - 0 / (16 * 1))
    different = score_of(([(0, 1, 60), (16 + 4, 1, 60)], False))
    assert metrics.groove_consistency(different, 16) == pytest.approx(1 - 2 / 16)
    assert math.isnan(metrics.groove_consistency(score_of(([(0, 1, 60)], False)), 16))


def test_measure_ticks_follows_the_time_signature() -> None:
    assert metrics.measure_ticks(score_of(([(0, 1, 60)], False), tpq=480, meter=(7, 8))) == 1680


notes_strategy = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40), st.integers(30, 90)), min_size=1,
                          max_size=40)


@settings(max_examples=60, deadline=None)
@given(pitched=notes_strategy, drums=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 4),
                                                        st.integers(35, 50)), max_size=20))
def test_agrees_with_muspy(pitched, drums) -> None:
    muspy = pytest.importorskip("muspy")
    score = score_of((pitched, False), (drums, True))
    music = muspy.Music(resolution=TPQ, tracks=[
        muspy.Track(is_drum=False, notes=[muspy.Note(time=t, pitch=p, duration=d, velocity=80) for t, d, p in pitched]),
        muspy.Track(is_drum=True, notes=[muspy.Note(time=t, pitch=p, duration=d, velocity=80) for t, d, p in drums]),
    ])
    pairs = [
        (metrics.pitch_class_entropy(score), muspy.pitch_class_entropy(music)),
        (metrics.scale_consistency(score), muspy.scale_consistency(music)),
        (metrics.empty_beat_rate(score), muspy.empty_beat_rate(music)),
        (metrics.polyphony(score), muspy.polyphony(music)),
        (metrics.groove_consistency(score, 16), muspy.groove_consistency(music, 16)),
    ]
    for ours, theirs in pairs:
        assert ours == pytest.approx(theirs, nan_ok=True)
    assert np.isfinite(metrics.pitch_class_entropy(score))

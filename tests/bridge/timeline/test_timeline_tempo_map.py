"""Bars <-> beats <-> seconds <-> samples through a tempo map with tempo and meter changes.

Expected values are worked out by hand in the comments, not by the code under test.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap, TempoMapError

# 120 BPM until beat 16, then 90 BPM; 4/4 for bars 1-2, 3/4 from bar 3, 7/8 from bar 7.
CHANGING = TempoMap(
    (TempoChange(0.0, 120.0), TempoChange(16.0, 90.0)),
    (MeterChange(1, 4, 4), MeterChange(3, 3, 4), MeterChange(7, 7, 8)),
)


@pytest.mark.parametrize(("bar", "beat"), [
    (1, 0.0),
    (2, 4.0),
    (3, 8.0),          # two bars of 4/4
    (4, 11.0),         # + one bar of 3/4
    (7, 20.0),         # 8 + 4 * 3
    (9, 27.0),         # 20 + 2 * 3.5 (7/8 = 3.5 quarters)
])
def test_bar_to_beat_follows_meter_changes(bar: int, beat: float) -> None:
    assert CHANGING.bar_to_beat(bar) == pytest.approx(beat)
    assert CHANGING.beat_to_bar(beat) == pytest.approx(bar)


@pytest.mark.parametrize(("beat", "seconds"), [
    (0.0, 0.0),
    (8.0, 4.0),                  # 8 beats at 120 BPM
    (16.0, 8.0),                 # the tempo change
    (20.0, 8.0 + 4 * 60 / 90),   # 4 beats at 90 BPM after it: 10.666...
    (27.0, 8.0 + 11 * 60 / 90),
])
def test_beat_to_seconds_integrates_tempo_steps(beat: float, seconds: float) -> None:
    assert CHANGING.beat_to_seconds(beat) == pytest.approx(seconds)
    assert CHANGING.seconds_to_beat(seconds) == pytest.approx(beat)


def test_bar_to_sample_at_two_rates() -> None:
    # bar 7 = beat 20 = 10.666... s
    assert CHANGING.bar_to_sample(7, 48000) == 512000
    assert CHANGING.bar_to_sample(7, 44100) == 470400


def test_lookups_of_what_is_in_force() -> None:
    assert CHANGING.tempo_at(15.99) == 120.0
    assert CHANGING.tempo_at(16.0) == 90.0
    assert (CHANGING.meter_at_bar(5).numerator, CHANGING.meter_at_bar(5).denominator) == (3, 4)
    assert CHANGING.meter_at_beat(20.5).numerator == 7
    assert CHANGING.tempos_in_seconds() == [(0.0, 120.0), (8.0, 90.0)]


def test_constant_map_matches_the_simple_formula() -> None:
    tempo = TempoMap.constant(108.0, 6, 8)
    # 6/8 = 3 quarters per bar; bar 5 = 12 beats = 12 * 60 / 108 s
    assert tempo.bar_to_seconds(5) == pytest.approx(12 * 60 / 108)


@pytest.mark.parametrize(("tempos", "meters", "message"), [
    ((TempoChange(1.0, 120.0),), (MeterChange(1, 4, 4),), "tempo at beat 0"),
    ((TempoChange(0.0, 120.0),), (MeterChange(2, 4, 4),), "meter at bar 1"),
    ((TempoChange(0.0, 0.0),), (MeterChange(1, 4, 4),), "tempo must be"),
    ((TempoChange(0.0, 120.0), TempoChange(0.0, 90.0)), (MeterChange(1, 4, 4),), "increasing beat order"),
    ((TempoChange(0.0, 120.0),), (MeterChange(1, 4, 3),), "meter must be"),
])
def test_bad_maps_are_refused_with_the_reason(tempos, meters, message: str) -> None:
    with pytest.raises(TempoMapError, match=message):
        TempoMap(tempos, meters)


def test_bad_positions_are_refused() -> None:
    with pytest.raises(TempoMapError, match="bars are counted from 1"):
        CHANGING.bar_to_beat(0)
    with pytest.raises(TempoMapError, match="beat must be >= 0"):
        CHANGING.beat_to_seconds(-1.0)


@given(st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_seconds_and_beats_round_trip(beat: float) -> None:
    assert CHANGING.seconds_to_beat(CHANGING.beat_to_seconds(beat)) == pytest.approx(beat, abs=1e-9)

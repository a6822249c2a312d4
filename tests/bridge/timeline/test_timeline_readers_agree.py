"""Random tempo maps: pretty_midi, mido and rpp all find the clip where the tempo map says the bar is."""
from __future__ import annotations

import io

import mido
import pretty_midi
import pytest
import rpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.timeline.clip import read_clip
from bridge.timeline.reaper import ReaperItem, add_items, dump, new_project, tempo_map_from_project
from bridge.timeline.smf import clip_smf, tempo_map_from_smf
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap

METERS = [(4, 4), (3, 4), (6, 8), (7, 8), (5, 4), (2, 2)]


@st.composite
def tempo_maps(draw) -> TempoMap:
    """Up to 4 tempo steps on 1/8-beat positions and up to 3 meter changes."""
    beats = sorted(draw(st.sets(st.integers(1, 400), max_size=3)))
    tempos = [TempoChange(0.0, float(draw(st.integers(40, 240))))]
    tempos += [TempoChange(b / 8, float(draw(st.integers(40, 240)))) for b in beats]
    bars = sorted(draw(st.sets(st.integers(2, 40), max_size=3)))
    meters = [MeterChange(1, *draw(st.sampled_from(METERS)))]
    meters += [MeterChange(bar, *draw(st.sampled_from(METERS))) for bar in bars]
    return TempoMap(tuple(tempos), tuple(meters))


@pytest.fixture()
def parts(clip_folder):
    """The MIDI parts of a synthetic clip (each part's first note on the clip's first downbeat)."""
    return read_clip(clip_folder()).parts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tempo=tempo_maps(), bar=st.integers(1, 60))
def test_smf_readers_agree_with_the_tempo_map(parts, tempo: TempoMap, bar: int) -> None:
    data = clip_smf(tempo, parts, bar)
    expected = tempo.bar_to_seconds(bar)
    midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    # SMF tempo is whole microseconds per quarter: allow that rounding over a few hundred beats.
    assert min(i.notes[0].start for i in midi.instruments) == pytest.approx(expected, abs=1e-3)
    now = 0.0
    for message in mido.MidiFile(file=io.BytesIO(data)):
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            break
    assert now == pytest.approx(expected, abs=1e-3)
    back = tempo_map_from_smf(data)
    assert back.meters == tempo.meters
    assert [t.beat for t in back.tempos] == [t.beat for t in tempo.tempos]


@settings(max_examples=40, deadline=None)
@given(tempo=tempo_maps(), bar=st.integers(1, 60))
def test_rpp_positions_and_tempo_map_round_trip(tempo: TempoMap, bar: int) -> None:
    project = new_project(tempo, 48000)
    add_items(project, [ReaperItem("x", "x.wav", tempo.bar_to_seconds(bar), 1.0)])
    parsed = rpp.loads(dump(project))
    position = float(parsed.find("TRACK").find("ITEM").find("POSITION")[1])
    assert position == pytest.approx(tempo.bar_to_seconds(bar), abs=1e-9)
    back = tempo_map_from_project(parsed)
    assert back.meters == tempo.meters
    assert back.bar_to_seconds(bar) == pytest.approx(tempo.bar_to_seconds(bar), abs=1e-6)
